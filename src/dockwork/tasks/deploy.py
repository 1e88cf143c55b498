"""`inv deploy.*`: the same stack on Docker Swarm, rendered from the compose files.

``deploy.up`` checks everything first (a swarm manager, the secrets' values, a stack file
that renders, placement constraints some node satisfies, IPVS in the engine's kernel for
``deploy_routing = "mesh"``: :mod:`dockwork.swarm.routing`), so bad input changes nothing.
Then: the images built under the commit's tag (pushed with ``deploy_registry``), the
secrets and configs created (named by content), the servers and the migration job deployed
and the job waited for (a failed migration stops here: app and worker keep running the
previous version), then the whole stack, waited for until every service runs its replicas
healthy, an update that failed being rolled back by Swarm and reported as a failure.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.exceptions import Exit
from invoke.tasks import task

from dockwork.config import check_stack_name, load_config
from dockwork.engine_probe import check_engine
from dockwork.errors import DeployError, UsageError
from dockwork.swarm import cluster, release, routing
from dockwork.swarm.render import PROXY_SERVICE, to_yaml
from dockwork.tasks import _signals
from dockwork.tasks._base import clean_errors, run, say

if TYPE_CHECKING:
    from typing import Any

    from invoke.context import Context
    from invoke.runners import Result

    from dockwork.config import Config


def _ready() -> Config:
    config = load_config(require_compose_files=False)
    check_stack_name(config)
    check_engine(config.engine_timeout)
    return config


def _deploy_argv(config: Config, path: Path) -> list[str]:
    resolve = "always" if config.deploy_registry else "never"
    argv = ["docker", "stack", "deploy", "--detach=true", "--resolve-image", resolve]
    if config.deploy_registry:
        argv.append("--with-registry-auth")
    return [*argv, "--compose-file", str(path), config.stack]


def _write(directory: Path, name: str, stack: dict[str, Any]) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(to_yaml(stack))
    return path


def _require_service(config: Config, service: str) -> str:
    found = cluster.services(config.stack)
    if not found:
        raise UsageError(
            f"stack {config.stack!r} is not deployed on this swarm: `inv deploy.up` deploys it."
        )
    if service not in found:
        raise UsageError(
            f"stack {config.stack!r} has no service {service!r}; it has: "
            f"{', '.join(sorted(found))}."
        )
    return cluster.full_name(config.stack, service)


@task(
    help={
        "build": "build the images (default); --no-build uses the tagged ones present",
        "check_routing": 'with deploy_routing "mesh", check first that the engine has IPVS '
        "(default); --no-check-routing skips that",
    }
)
@clean_errors
def up(c: Context, build: bool = True, check_routing: bool = True) -> None:
    """Build, tag with the commit, deploy to the swarm and wait until healthy."""
    config = _ready()
    cluster.require_manager(config.engine_timeout)
    prepared = release.prepare(config)  # every check before any change
    rendered = prepared.rendered
    cluster.check_placement(rendered.stack)
    used, created = cluster.compose_mounts()
    shared = cluster.shared_data(cluster.stack_mounts(config.stack, rendered.stack), used, created)
    if shared:
        raise DeployError(
            f"stack {config.stack!r} would use data a Compose project on this engine uses: "
            f"{'; '.join(shared)}. Two servers writing the same data can corrupt it. Give the "
            "stack volumes and host paths of its own (a volume's `name:`, `external:` or a "
            "bind mount in the files deploy_files names keeps the Compose project's; set "
            "deploy_stack (DOCKWORK_DEPLOY_STACK) to another name when the volume is "
            "<stack>_<volume>), or move the data into the stack's volumes yourself once the "
            "Compose project is down. Nothing was deployed."
        )
    # mesh routing needs IPVS in the engine's kernel (asked again once the app's image is built
    # when the image asked with could not ask the kernel)
    again = (
        routing.check_stack(rendered, config.engine_timeout, say)
        if config.deploy_routing == "mesh" and check_routing
        else []
    )
    say(f"deploying stack {config.stack!r}, images tagged {prepared.tag}")
    if build:
        release.build(config, prepared)
    else:
        for ref in sorted(set(rendered.images.values())):
            if run(c, ["docker", "image", "inspect", ref], hide=True, warn=True).failed:
                raise UsageError(f"image {ref} is not on this engine: deploy without --no-build.")
    if again:
        routing.check(again, config.engine_timeout, say)
    cluster.create_objects("secret", config.stack, rendered.secrets)
    cluster.create_objects("config", config.stack, rendered.configs)

    services = rendered.stack["services"]
    # the servers (images the project does not build) and the job, not the app's proxy
    first = {
        n: s
        for n, s in services.items()
        if (n not in rendered.images or n == rendered.job) and n != PROXY_SERVICE
    }
    # then the rest; the servers are not sent again (an update with no change would still
    # make their previous spec the current one) nor the job (Swarm runs it on every update)
    rest = {n: s for n, s in services.items() if n not in first} if rendered.job else services
    long_running = [n for n in services if n != rendered.job]
    before = cluster.versions(config.stack)
    with tempfile.TemporaryDirectory(prefix="dockwork-deploy-") as tmp:
        # 1. the servers and the migration job; app and worker keep running as they are
        if rendered.job is not None:
            phase = {**rendered.stack, "services": first}
            run(c, _deploy_argv(config, _write(Path(tmp), "servers.yaml", phase)))
            cluster.wait_job(config.stack, rendered.job, config.deploy_timeout)
            say("migrations: the job ran and completed")
        phase = {**rendered.stack, "services": rest}
        run(c, _deploy_argv(config, _write(Path(tmp), "stack.yaml", phase)))
    try:
        cluster.wait_converged(
            config.stack, long_running, config.deploy_timeout, say, before=before
        )
    except DeployError as exc:
        rolled = cluster.roll_back_changed(config.stack, long_running, before)
        if not rolled:
            raise
        cluster.wait_converged(
            config.stack, rolled, config.deploy_timeout, say, before=before, rollback=True
        )
        raise DeployError(
            f"{exc} The services updated with it ({', '.join(rolled)}) were rolled back too: "
            "the previous release runs everywhere (the migrations stay applied)."
        ) from None
    # services dropped from the compose files go once the rest is up (`--prune` would take
    # the job with them)
    obsolete = sorted(set(cluster.services(config.stack)) - set(services))
    if obsolete:
        run(c, ["docker", "service", "rm", *(cluster.full_name(config.stack, n) for n in obsolete)])
    cluster.prune_objects("secret", config.stack, [s.name for s in rendered.secrets])
    cluster.prune_objects("config", config.stack, [o.name for o in rendered.configs])
    if rendered.published is not None:
        say(
            f"{config.app_service} → http://{cluster.manager_address()}:{rendered.published} (port "
            f"{rendered.published} of every node)",
            out=True,
        )
    say(f"stack {config.stack!r} is up at {prepared.tag}: `inv deploy.ps` lists its tasks.")


@task
@clean_errors
def render(c: Context) -> None:  # noqa: ARG001 - invoke passes the context
    """Print the stack file deploy.up would deploy (secrets by name only); change nothing."""
    config = _ready()
    prepared = release.prepare(config)
    print(to_yaml(prepared.rendered.stack), end="")


@task
@clean_errors
def ps(c: Context) -> None:
    """The stack's services and their tasks (state, errors)."""
    config = _ready()
    if not cluster.services(config.stack):
        raise UsageError(
            f"stack {config.stack!r} is not deployed on this swarm: `inv deploy.up` deploys it."
        )
    run(c, ["docker", "stack", "services", config.stack])
    run(c, ["docker", "stack", "ps", "--no-trunc", config.stack])


@task(
    help={
        "service": "the service (default: the app service)",
        "follow": "keep following new output",
        "tail": "lines to show from the end (default: 100)",
    }
)
@clean_errors
def logs(c: Context, service: str = "", follow: bool = False, tail: int = 100) -> None:
    """A service's logs, all its tasks."""
    config = _ready()
    name = _require_service(config, service or config.app_service)
    argv = ["docker", "service", "logs", "--tail", str(tail)]
    if follow:
        argv.append("--follow")
    result = run(c, [*argv, name], warn=True)
    if not result.ok:
        raise Exit(code=result.exited)


@task(help={"service": "the service to roll back (default: the app service)"})
@clean_errors
def rollback(c: Context, service: str = "") -> None:
    """Roll a service back to its previous spec (image), and wait until it runs healthy."""
    config = _ready()
    short = service or config.app_service
    name = _require_service(config, short)
    if not cluster.has_previous(cluster.services(config.stack)[short]):
        raise UsageError(f"{name} has no previous version to roll back to.")
    before = cluster.versions(config.stack)
    run(c, ["docker", "service", "rollback", "--detach", name])
    cluster.wait_converged(
        config.stack, [short], config.deploy_timeout, say, before=before, rollback=True
    )
    say(f"{name} rolled back.")


#: Swarm's refusal to remove a network a task or another service still holds (``docker
#: stack rm`` fails): "network ID is in use by task ID" / "... by service ID". Swarm's IDs
#: are 25 characters, and the CLI runs its next line on right after the holder's
NETWORK_IN_USE = re.compile(r"network (\w+) is in use by (task|service) ([0-9a-z]{1,25})")
#: how long ``deploy.rm`` asks again while a network of the stack is held (seconds)
REMOVE_TIMEOUT = 120


def _remove_stack(c: Context, stack: str, timeout: float = REMOVE_TIMEOUT) -> None:
    """``docker stack rm``, asked again while Swarm refuses to remove a network a task still
    holds. It removes the services, then at once their networks: while a task the
    orchestrator has not yet marked for shutdown (a loaded manager lags) or another service
    attached to the network holds one, the command fails and the network stays (Swarm never
    retries). The stack's services are gone by then: asking again removes the rest. The
    first attempt's output is shown; the retries' only when they fail otherwise."""
    argv = ["docker", "stack", "rm", stack]
    deadline = time.monotonic() + timeout
    result = run(c, argv, pty=False, warn=True)
    if _held(result):
        say("a network of the stack is still in use; asking again until it is let go.")
    while held := _held(result):
        if time.monotonic() > deadline:
            network, kind, holder = held.groups()
            raise DeployError(
                f"`docker stack rm {stack}` still fails after {timeout:g}s: Swarm refuses to "
                f"remove network {network}, in use by {kind} {holder}. `docker network "
                f"inspect --verbose {network}` shows what holds it; stop that, then run `inv "
                "deploy.rm` again. Volumes, secrets and configs were not touched."
            )
        _signals.command = ""  # a signal now stops the wait, not a command
        time.sleep(cluster.POLL * 2)
        result = run(c, argv, pty=False, warn=True, hide="both")  # echoed, output kept back
    if not result.ok:  # failed otherwise: the command's own output says why, its code exits
        if result.hide:  # a retry's, not shown yet
            print(result.stdout, end="", flush=True)
            print(result.stderr, end="", file=sys.stderr, flush=True)
        raise Exit(code=result.exited or 1)


def _held(result: Result) -> re.Match[str] | None:
    """Why ``docker stack rm`` failed, when it is a network of the stack still in use."""
    return None if result.ok else NETWORK_IN_USE.search(f"{result.stdout}{result.stderr}")


@task(
    help={
        "volumes": "also delete the stack's volumes (the data): needs --yes",
        "yes": "confirm --volumes",
    }
)
@clean_errors
def rm(c: Context, volumes: bool = False, yes: bool = False) -> None:
    """Remove the stack's services, networks, secrets and configs; volumes only with
    --volumes --yes."""
    config = _ready()
    # listed before anything is removed: a listing that fails leaves everything as it was,
    # never a stack removed and its volumes kept behind a success
    names = cluster.stack_volumes(config.stack) if volumes else []
    if volumes and not yes:
        raise UsageError(
            f"--volumes deletes the volumes of stack {config.stack!r} and the data in them "
            f"({', '.join(names) or 'none exist right now'}). Nothing was changed. Run `inv "
            "deploy.rm --volumes --yes` to delete them.",
            exit_code=1,
        )
    _remove_stack(c, config.stack)
    cluster.wait_gone(config.stack)
    for kind in ("secret", "config"):
        cluster.prune_objects(kind, config.stack, [])
    if volumes:
        # listed again: what is there now the stack is gone
        names = cluster.stack_volumes(config.stack, removed=True)
        if names:
            run(c, ["docker", "volume", "rm", *names])
    else:
        say("volumes kept (`inv deploy.rm --volumes --yes` deletes them).")
