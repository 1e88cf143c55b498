"""The Compose stack: dev, up, down, build, logs, ps, shell, restart, migrate."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from invoke.exceptions import Exit
from invoke.tasks import task

from dockwork import envfile, ports
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks._base import clean_errors, project, run, say, split_names
from dockwork.tasks._signals import Interrupted

if TYPE_CHECKING:
    from invoke.context import Context

    from dockwork.compose import Compose
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


def _up(c: Context, config: Config, compose: Compose, *, build: bool) -> None:
    """Bring the stack up and wait for health; on failure show what failed and its logs."""
    _check_ports(config, compose)
    result = run(c, compose.up(wait_timeout=config.wait_timeout, build=build), warn=True, pty=False)
    if result.ok:
        return
    failing = compose.failing(f"{result.stdout}\n{result.stderr}")
    for name in failing:
        print(f"\n--- last {config.log_tail} log lines of {name} ---", file=sys.stderr)
        run(c, compose.logs([name], tail=config.log_tail), warn=True, pty=False)
    raise DockworkError(
        f"the stack did not become healthy (exit {result.exited}); failing: "
        f"{', '.join(failing) or 'see the output above'}. Their last log lines are above; fix "
        "the cause and run `inv up` again (`inv ps` shows the state of every service).",
        exit_code=result.exited or 1,
    )


def _print_endpoints(compose: Compose, config: Config) -> None:
    """Where the app (and the frontend's dev server, when it runs) answer."""
    for s in compose.states():
        if s.service in {config.app_service, config.web_service}:
            published = [(p, t, u) for p, t, u in s.publishers if p]
            if published:
                port, target, url = published[0]
                host = "127.0.0.1" if url in {"", "0.0.0.0", "::"} else url  # noqa: S104
                say(f"{s.service} → http://{host}:{port} (port {target})", out=True)


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
    if build:
        run(c, compose.build())
    _up(c, config, compose, build=False)
    _print_endpoints(compose, config)
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
    """Start the stack in the background and wait until every service is healthy."""
    config, compose = project()
    _up(c, config, compose, build=build)
    _print_endpoints(compose, config)


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
    run(c, compose.build(split_names(service)))


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
