"""The quality loop: format, lint, typecheck, test; and `inv ci`.

Each tool runs where it is: in the app's (dev) image when the image has it, as the host
uid/gid so files the tools rewrite stay yours; otherwise on the host through uv. The task
says which. ``--local`` always runs on the host. What an image carries is asked once per
image id (a cache under ``~/.cache/dockwork``).
"""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import TYPE_CHECKING

from invoke.tasks import task

from dockwork import kinds, runner
from dockwork.compose import host_ids
from dockwork.config import cache_dir
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks._base import (
    clean_errors,
    project,
    remainder_args,
    run,
    say,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from invoke.context import Context

    from dockwork.compose import Compose
    from dockwork.config import Config

FORMAT = (("ruff", "format", "."), ("ruff", "check", "--fix", "."))
LINT = (("ruff", "check", "."), ("ruff", "format", "--check", "."))
TYPECHECK = (("mypy",),)
LOCAL_HELP = "run on the host through uv instead of in the dev container"


TOOLS = ("ruff", "mypy", "pytest")


def image_tools(c: Context, compose: Compose, config: Config) -> set[str]:
    """Which of :data:`TOOLS` the app service's image has on its PATH (built if missing)."""
    resolved = compose.resolved()["services"][config.app_service]
    image = str(resolved.get("image") or f"{config.project_name}-{config.app_service}")
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    found = runner.run(inspect, check=False)
    if not found.ok:
        run(c, compose.build([config.app_service]), pty=False)
        found = runner.run(inspect)
    image_id = found.stdout.strip().removeprefix("sha256:")
    cached = cache_dir() / "tools" / f"{image_id[:24]}.json"
    try:
        return set(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    script = " ".join(f"command -v {t} >/dev/null && echo {t};" for t in TOOLS)
    argv = ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script]
    tools = set(runner.run(argv, check=False).stdout.split()) & set(TOOLS)
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(sorted(tools)))
    return tools


def _where(c: Context, compose: Compose, config: Config, tool: str) -> bool:
    """True (and says so) when ``tool`` runs in the app image; False: on the host."""
    if tool in image_tools(c, compose, config):
        say(f"{tool} runs in the {config.app_service!r} image (as {host_ids() or 'you'}).")
        return True
    say(
        f"{tool} is not in the {config.app_service!r} image; running it on the host through uv "
        "(add it to the image to run it there)."
    )
    return False


def _tool(c: Context, commands: Sequence[Sequence[str]], *, local: bool) -> None:
    """Run each command where its tool is; all run, the first failure wins."""
    failed: list[tuple[str, int]] = []
    config, compose = project()
    if not local and _where(c, compose, config, commands[0][0]):
        argvs = [_in_dev(compose, config, cmd, deps=False) for cmd in commands]
    else:
        argvs = [["uv", "run", "--", *cmd] for cmd in commands]
    for argv in argvs:
        result = run(c, argv, pty=False, warn=True)
        if not result.ok:
            failed.append((shlex.join(argv), result.exited))
    if failed:
        raise DockworkError(
            "failed: " + "; ".join(f"`{cmd}` (exit {code})" for cmd, code in failed),
            exit_code=failed[0][1],
        )


def _in_dev(
    compose: Compose, config: Config, argv: Sequence[str], *, deps: bool, env: Sequence[str] = ()
) -> list[str]:
    """``compose run --rm [--no-deps] -T --user UID:GID [--env NAME…] app argv``."""
    names: dict[str, str | None] = dict.fromkeys(env)
    return compose.run(
        config.app_service, argv, no_deps=not deps, tty=False, user=host_ids(), env=names
    )


@task(help={"local": LOCAL_HELP})
@clean_errors
def format(c: Context, local: bool = False) -> None:  # noqa: A001 - the task's public name
    """Format and fix (ruff format, ruff check --fix) in the dev container."""
    _tool(c, FORMAT, local=local)


@task(help={"local": LOCAL_HELP})
@clean_errors
def lint(c: Context, local: bool = False) -> None:
    """Lint and check formatting (ruff check, ruff format --check); changes nothing."""
    _tool(c, LINT, local=local)


@task(help={"local": LOCAL_HELP})
@clean_errors
def typecheck(c: Context, local: bool = False) -> None:
    """Type-check with mypy (strict) in the dev container."""
    _tool(c, TYPECHECK, local=local)


def test_server_urls(compose: Compose, config: Config) -> dict[str, str]:
    """dockwork's test-server settings for the stack's own servers, as the app sees them.

    The tests get their own databases on that PostgreSQL (cloned from a migrated template)
    and their own Redis logical databases; the dev database itself is never used. Only the
    servers the project's tests use (``test_services``) are named.
    """
    environment = compose.resolved()["services"][config.app_service].get("environment") or {}
    settings = {}
    for name in config.test_services:
        kind = kinds.of(name)
        setting, key = kind.environment, kind.app_url_setting
        if setting is None or key is None:  # a compose service: its own container, from Docker
            continue
        variable = getattr(config, key)
        value = environment.get(variable)
        if not value:
            raise UsageError(
                f"the {config.app_service!r} service has no {variable} in its environment; "
                f"`inv test` needs it to find the stack's {name}. Set `{key}` in "
                "[tool.dockwork] to the variable the app reads."
            )
        settings[setting] = kind.admin_url(str(value))
    return settings


@task(help={"local": "run pytest on the host (it starts its own PostgreSQL and Redis)"})
@clean_errors
def test(c: Context, local: bool = False) -> None:  # noqa: PT028 - a task, not a test
    """Run pytest in the dev container against test databases on the stack (`-- ARGS`)."""
    args = remainder_args(c)
    config, compose = project()
    if local or not _where(c, compose, config, "pytest"):
        run(c, ["uv", "run", "--", "pytest", *args])
        return
    names = test_server_urls(compose, config)
    # the app's own variables are emptied in the test container: code that reads them
    # directly fails loudly instead of writing to the dev database
    names |= {config.database_url_env: "", config.redis_url_env: ""}
    # passed by name (-e NAME): the values reach the container, not the echoed command
    by_name: dict[str, str | None] = dict.fromkeys(names)
    up = any(s.service == config.app_service and s.state == "running" for s in compose.states())
    argv: list[str]
    if up:  # the stack runs: in its app container, no container to create and start
        argv = compose.exec(
            config.app_service, ["pytest", *args], tty=False, user=host_ids(), env=by_name
        )
    else:
        argv = _in_dev(compose, config, ["pytest", *args], deps=True, env=list(names))
    run(c, argv, pty=False, env=names)


@task(help={"reuse": "reuse the session environments (nox -R)"})
@clean_errors
def ci(c: Context, reuse: bool = False) -> None:
    """Run exactly what CI runs: the default nox sessions (`-- ARGS` go to nox)."""
    run(c, ["nox", *(["-R"] if reuse else []), *remainder_args(c)])
