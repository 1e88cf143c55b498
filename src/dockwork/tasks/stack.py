"""The Compose stack: dev, up, down, build, logs, ps, shell, restart, migrate; and doctor."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn

from invoke.exceptions import Exit
from invoke.tasks import task

from dockwork import engine_probe, envfile, ports
from dockwork.compose import STEADY, completed_only, has_healthcheck, last_probes
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks._base import build_images, clean_errors, project, run, say, split_names
from dockwork.tasks._signals import Interrupted

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from invoke.context import Context

    from dockwork.compose import Compose, ServiceState
    from dockwork.config import Config


def _check_ports(config: Config, compose: Compose) -> None:
    """Fail before starting anything when another program holds a published host port."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # two independent queries at once
        states, resolved = pool.submit(compose.states), pool.submit(compose.resolved)
        ours = {p for s in states.result() for p, _, _ in s.publishers}
        busy = ports.taken(compose, resolved.result(), ours)
    if busy:
        env_name = envfile.env_path(config).name
        raise DockworkError(
            " ".join(p.in_use_message(env_name) for p in busy) + " Nothing was started."
        )


def _up(c: Context, config: Config, compose: Compose, *, build: bool) -> list[ServiceState]:
    """Bring the stack up and wait for health, then for its one-shot services to finish; on
    failure show what failed and its logs. Returns the containers as they stand."""
    _check_ports(config, compose)
    # built first, alone (what `up` would build as it starts): a failed build is said as
    # such, and nothing is started; `up` itself then builds nothing
    missing = [] if build else compose.unbuilt()
    published = [name for name in missing if compose.pulls_first(name)]
    if published:  # as `up` does: an image that can be pulled is, else it is built
        run(c, compose.pull(published), warn=True, pty=False)
        missing = compose.unbuilt()
    if build or missing:
        build_images(c, compose, missing)
    one_shot = compose.one_shots()
    if _migrated_by_nothing(config, compose, one_shot):
        _migrate_first(c, config, compose)
    result = run(c, compose.up(wait_timeout=config.wait_timeout), warn=True, pty=False)
    output = f"{result.stdout}\n{result.stderr}"
    if not result.ok and not completed_only(output):
        _fail(
            c,
            config,
            compose,
            compose.failing(output),
            compose.states(),
            headline=f"the stack did not become healthy (exit {result.exited})",
            exit_code=result.exited or 1,
            one_shot=one_shot,
        )
    # `up --wait` returns once every container runs (healthy where it has a healthcheck):
    # a one-shot may still be running then, and fail a moment later. And Compose fails on
    # a one-shot that finished with 0 unless a service depends on it. Both settle here.
    settled = compose.settle(
        one_shot,
        config.wait_timeout,
        on_wait=lambda names: say(_waiting_for(names, one_shot)),
    )
    if settled.failed:
        _fail(
            c,
            config,
            compose,
            list(settled.failed),
            settled.states,
            headline="the stack did not come up cleanly",
            one_shot=one_shot,
        )
    if settled.pending:
        _fail(
            c,
            config,
            compose,
            list(settled.pending),
            settled.states,
            headline=f"the stack did not settle within {config.wait_timeout} s",
            one_shot=one_shot,
            hint=(
                " dockwork waits for a service without a healthcheck whose restart policy is "
                '"no" or on-failure to run to completion; one meant to keep running needs a '
                "healthcheck or `restart: unless-stopped`."
                if set(settled.pending) & one_shot
                else ""
            ),
        )
    unsteady = compose.unsteady(settled.states, one_shot)
    if unsteady:
        _fail(
            c,
            config,
            compose,
            unsteady,
            (),  # its state now (running again, between restarts) would say nothing
            headline=(
                f"the stack did not stay up: {', '.join(unsteady)} stopped or restarted within "
                f"{STEADY:g} s of starting"
            ),
            one_shot=one_shot,
            hint=(
                " Without a healthcheck a service counts as up once it runs; one (an HTTP"
                " check of the app) lets Compose and dockwork wait until it serves."
            ),
        )
    _wait_answering(c, config, compose, settled.states, one_shot)
    return list(settled.states)


#: seconds between two asks of an app without a healthcheck, and between two looks at its
#: container meanwhile (a `compose ps`)
ANSWER_POLL, STATE_POLL = 0.25, 2.0


def _wait_answering(
    c: Context,
    config: Config,
    compose: Compose,
    states: Iterable[ServiceState],
    one_shot: Collection[str],
) -> None:
    """An app without a healthcheck is up once its published port answers, as the URL
    `up` prints promises (one that dies later, or never listens, had its URL printed):
    waited for up to ``wait_timeout``, its container watched meanwhile. An app with a
    healthcheck, or publishing no port, is Compose's to wait for."""
    service = compose.service(config.app_service)
    if service is None or has_healthcheck(service):
        return
    found = ports.endpoint(config.app_service, compose.resolved(), states)
    if isinstance(found, str):
        return
    remote = engine_probe.remote_engine()
    if remote:  # its published ports are on that machine, maybe on its loopback only
        say(f"the engine is on {remote}: not asking whether {config.app_service} answers there")
        return
    deadline = time.monotonic() + config.wait_timeout
    looked = time.monotonic()
    said = False
    while not ports.answers(found.host, found.port):
        now = time.monotonic()
        if now >= deadline:
            _fail(
                c,
                config,
                compose,
                [config.app_service],
                (),
                headline=(
                    f"{config.app_service} did not answer on {found.host}:{found.port} (its "
                    f"port {found.target}) within {config.wait_timeout} s"
                ),
                one_shot=one_shot,
                hint=(
                    " It runs but nothing serves there: a server listening on 127.0.0.1 in "
                    "its container (listen on 0.0.0.0), or another port than the one published."
                ),
            )
        if not said:
            say(f"waiting for {config.app_service} to answer on port {found.target}")
            said = True
        if now - looked >= STATE_POLL:
            looked = now
            mine = [s for s in compose.states() if s.service == config.app_service]
            # restarting: its restart policy's doing (the steady check allowed one); the
            # deadline ends a loop of them
            if not any(s.state in {"running", "restarting"} for s in mine):
                _fail(
                    c,
                    config,
                    compose,
                    [config.app_service],
                    mine,
                    headline=(
                        f"the stack did not stay up: {config.app_service} stopped before it "
                        f"answered on port {found.target}"
                    ),
                    one_shot=one_shot,
                )
        time.sleep(ANSWER_POLL)


def _migrated_by_nothing(config: Config, compose: Compose, one_shot: Collection[str]) -> bool:
    """True when nothing of the stack runs the migrations as it starts: the migrate service
    is one the stack keeps running (a healthcheck, or restart always / unless-stopped), as
    `dockwork init` sets the app's for a project with no migration service. A one-shot, or a
    service that may be one (no healthcheck, no such restart policy: it may be migrating as
    the stack starts), runs them itself; a migrate service the compose files do not start
    (absent, or behind a profile) is left to `inv migrate`."""
    service = compose.service(config.migrate_service)
    if service is None or config.migrate_service in one_shot or not config.migrate_command:
        return False
    kept = str(service.get("restart") or "") in {"always", "unless-stopped"}
    return kept or has_healthcheck(service)


def _migrate_first(c: Context, config: Config, compose: Compose) -> None:
    """The migrations, as `inv migrate` runs them, before the stack starts: Compose starts
    the services the migrate service depends on (the database) and waits for them, and an
    app whose start or healthcheck needs the schema finds it there."""
    name = config.migrate_service
    say(f"no service of the stack migrates as it starts: migrating in {name} first.")
    result = run(c, compose.run(name, config.migrate_command, tty=False), pty=False, warn=True)
    if not result.ok:
        raise DockworkError(
            f"the migrations failed (exit {result.exited}); their output is above. The stack "
            f"was not started (what {name} depends on may be running). Fix the cause and run "
            "`inv up` again (`inv up --build` when the fix is in code the image is built "
            "from); `inv migrate` runs the migrations alone.",
            exit_code=result.exited or 1,
        )


def _waiting_for(names: Iterable[str], one_shot: Collection[str]) -> str:
    """What ``inv up`` waits for once Compose has returned."""
    finishing = [n for n in names if n in one_shot]
    starting = [n for n in names if n not in one_shot]
    parts = [f"{', '.join(finishing)} to finish"] if finishing else []
    parts += [f"{', '.join(starting)} to become healthy"] if starting else []
    return f"waiting for {' and '.join(parts)}"


def _fail(
    c: Context,
    config: Config,
    compose: Compose,
    failing: list[str],
    states: Iterable[ServiceState],
    *,
    headline: str,
    exit_code: int | None = None,
    one_shot: Collection[str] = (),
    hint: str = "",
) -> NoReturn:
    """Show the last log lines of each failing service, then fail naming each with its
    state (a one-shot's exit code) and, unless given, exit with a failed container's code."""
    states = list(states)
    for name in failing:
        print(f"\n--- last {config.log_tail} log lines of {name} ---", file=sys.stderr)
        run(c, compose.logs([name], tail=config.log_tail), warn=True, pty=False)
    unhealthy = [s for s in states if s.service in failing and s.health == "unhealthy"]
    probes = last_probes([s.name for s in unhealthy])
    for s in unhealthy:
        if s.name in probes:
            print(f"\n--- the last healthcheck of {s.service} ---", file=sys.stderr)
            print(probes[s.name], file=sys.stderr)
    seen: dict[str, str] = {}
    codes = []
    for s in states:
        if s.service in failing and s.service not in seen:
            kind = " (one-shot)" if s.service in one_shot else ""
            seen[s.service] = f"{s.service}{kind} {s.describe()}"
            if s.state == "exited" and s.exit_code:
                codes.append(s.exit_code)
    details = f" {'; '.join(seen.values())}." if seen else ""
    above = "Their last log lines are above" + (
        " (and what the healthcheck answered)" if probes else ""
    )
    raise DockworkError(
        f"{headline}; failing: {', '.join(failing) or 'see the output above'}.{details}{hint} "
        f"{above}; fix the cause and run `inv up` again (`inv up --build` "
        "when the fix is in code an image is built from; `inv ps` shows the state of every "
        "service).",
        exit_code=exit_code or next(iter(codes), 1),
    )


def _print_endpoints(config: Config, compose: Compose, states: list[ServiceState]) -> None:
    """Where the app answers (its own published port), and the frontend's dev server when
    it runs; when the app publishes no port, say so rather than print another's URL."""
    resolved = compose.resolved()
    for name in dict.fromkeys([config.app_service, config.web_service]):
        found = ports.endpoint(name, resolved, states)
        if isinstance(found, str):
            if name == config.app_service:
                say(f"no URL for the app: {found}.", out=True)
            continue
        also = f"; it also publishes {', '.join(map(str, found.others))}" if found.others else ""
        say(f"{name} → {found.url} (port {found.target}{also})", out=True)
        if found.note:
            say(found.note)


@task(
    help={
        "follow": "follow the logs after the stack is up (default: yes; --no-follow to return)",
        "build": "build the images first (default: yes)",
    }
)
@clean_errors
def dev(c: Context, follow: bool = True, build: bool = True) -> None:
    """Build, start the stack healthy and migrated, then follow its logs (Ctrl-C detaches)."""
    config, compose = project()
    states = _up(c, config, compose, build=build)
    _print_endpoints(config, compose, states)
    if not follow:
        return
    say("following logs; Ctrl-C stops following, the stack keeps running.", out=True)
    try:
        result = run(c, compose.logs(follow=True, tail=20), warn=True)
    except (KeyboardInterrupt, Interrupted):
        say(
            "stopped following logs. The stack is still running: `inv logs -f` follows again, "
            "`inv down` stops it."
        )
        raise
    if not result.ok:
        raise DockworkError(
            f"following logs failed (exit {result.exited}).", exit_code=result.exited
        )


@task(help={"build": "build images before starting"})
@clean_errors
def up(c: Context, build: bool = False) -> None:
    """Start the stack in the background: healthy, migrated, its one-shots done."""
    config, compose = project()
    states = _up(c, config, compose, build=build)
    _print_endpoints(config, compose, states)


@task(
    help={
        "volumes": "also delete the named volumes (the database's data): needs --yes",
        "yes": "confirm deleting the volumes named by --volumes",
    }
)
@clean_errors
def down(c: Context, volumes: bool = False, yes: bool = False) -> None:
    """Stop and remove the stack's containers and network; volumes are kept unless --volumes."""
    config, compose = project()
    if volumes and not yes:
        existing = compose.volumes()
        named = ", ".join(existing) if existing else "none exist right now"
        raise UsageError(
            f"--volumes deletes the named volumes of project {config.project_name!r} and the "
            f"data in them ({named}). Nothing was changed. Run `inv down --volumes --yes` to "
            "delete them; `inv db.dump` first keeps a copy of the database.",
            exit_code=1,
        )
    run(c, compose.down(volumes=volumes))


@task(help={"service": "service(s) to build, comma-separated (default: all)"})
@clean_errors
def build(c: Context, service: str = "") -> None:
    """Build the stack's images."""
    _, compose = project()
    build_images(c, compose, split_names(service))


@task(
    help={
        "service": "service(s), comma-separated (default: all)",
        "follow": "keep following new output",
        "tail": "lines to show from the end of each log (default: all)",
    },
)
@clean_errors
def logs(c: Context, service: str = "", follow: bool = False, tail: int = -1) -> None:
    """Show the services' logs (-f to follow)."""
    _, compose = project()
    names = split_names(service)
    compose.require_services(names)
    argv = compose.logs(names, follow=follow, tail=tail if tail >= 0 else None)
    result = run(c, argv, warn=True)
    if not result.ok:
        raise Exit(code=result.exited)


@task
@clean_errors
def ps(c: Context) -> None:
    """List the stack's containers with their state and health."""
    _, compose = project()
    run(c, compose.ps())


@task(help={"service": "service to open a shell in (default: the app service)"})
@clean_errors
def shell(c: Context, service: str = "") -> None:
    """Open an interactive shell in a service's container (started if it is not running)."""
    config, compose = project()
    name = service or config.app_service
    compose.require_services([name])
    running = any(s.service == name and s.state == "running" for s in compose.states())
    tty = sys.stdin.isatty()
    if running:
        argv = compose.exec(name, config.shell_command, tty=tty)
    else:
        argv = compose.run(name, config.shell_command, tty=tty)
    # a non-zero exit becomes invoke's UnexpectedExit: the task exits with the same code
    run(c, argv, pty=tty)


@task(help={"service": "service(s), comma-separated (default: all)"})
@clean_errors
def restart(c: Context, service: str = "") -> None:
    """Restart services."""
    _, compose = project()
    names = split_names(service)
    compose.require_services(names)
    run(c, compose.restart(names))


@task
@clean_errors
def migrate(c: Context) -> None:
    """Apply migrations to head in a container, against the stack's database (running or not)."""
    config, compose = project()
    argv = compose.run(config.migrate_service, config.migrate_command, tty=False)
    run(c, argv, pty=False)


@task
def doctor(c: Context) -> None:  # noqa: ARG001 - invoke passes the context
    """Check docker, the engine, Compose, ports, images, config and .env; non-zero if blocked."""
    from dockwork.doctor import main  # noqa: PLC0415 - the checks load only when asked

    code = main()
    if code:
        raise Exit(code=code)
