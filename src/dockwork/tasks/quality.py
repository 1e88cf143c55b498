"""The quality loop: format, lint, typecheck, test; and `inv ci`.

Each tool runs where it is: in the app's (dev) container when the image has it (pytest:
and dockwork) and the service mounts what it works on from here, as the host uid/gid so
files the tools rewrite stay yours; otherwise on the host through uv. The task says which
and why. ``--local`` always runs on the host. What an image carries is asked once per
image id (a cache under ``~/.cache/dockwork``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import shlex
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from invoke.tasks import task

from dockwork import kinds, runner
from dockwork.compose import host_ids
from dockwork.config import cache_dir
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks._base import (
    build_images,
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
#: asked of the image beside the tools: dockwork importable (its pytest plugin gives the
#: tests databases of their own; without it they would read the stack's settings)
PLUGIN = "dockwork"
#: the image probe's script, one line per answer; its hash names the cache entry
PROBE = " ".join(f"command -v {t} >/dev/null && echo {t};" for t in TOOLS) + (
    " for py in python3 python; do command -v $py >/dev/null || continue;"
    " $py -c 'import importlib.util as u, sys; sys.exit(u.find_spec(\"dockwork\") is None)'"
    f" 2>/dev/null && echo {PLUGIN}; break; done"
)


def image_tools(c: Context, compose: Compose, config: Config) -> set[str]:
    """Which of :data:`TOOLS` the app service's image has on its PATH, and :data:`PLUGIN`
    when dockwork is importable there (the image built if missing)."""
    image = compose.image_name(config.app_service)
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    found = runner.run(inspect, check=False)
    if not found.ok:
        build_images(c, compose, [config.app_service], pty=False)
        found = runner.run(inspect)
    image_id = found.stdout.strip().removeprefix("sha256:")
    probe = hashlib.sha256(PROBE.encode()).hexdigest()[:8]
    cached = cache_dir() / "tools" / f"{image_id[:24]}-{probe}.json"
    try:
        return set(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    argv = ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", PROBE]
    tools = set(runner.run(argv, check=False).stdout.split()) & {*TOOLS, PLUGIN}
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(sorted(tools)))
    return tools


def unmounted(compose: Compose, config: Config, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` (relative to the project) the app service does not bind-mount
    from this machine where the project is in its container (``container_workdir``): a
    tool run there would see the image's copy, or none."""
    service = compose.service(config.app_service) or {}
    binds = [
        (Path(str(v["source"])).resolve(), PurePosixPath(str(v["target"])))
        for v in service.get("volumes") or []
        if isinstance(v, dict) and v.get("type") == "bind" and v.get("source") and v.get("target")
    ]
    workdir = PurePosixPath(config.container_workdir)

    def mounted(path: str) -> bool:
        here = (config.root / path).resolve()
        inside = PurePosixPath(posixpath.normpath(workdir / path))
        return any(
            here.is_relative_to(source)
            and target.joinpath(*here.relative_to(source).parts) == inside
            for source, target in binds
        )

    return [path for path in paths if not mounted(path)]


def _where(c: Context, compose: Compose, config: Config, tool: str) -> bool:
    """True (and says so) when ``tool`` runs in the app's container: the image has it (and
    dockwork, for pytest) and the service mounts what it works on (the project; for
    pytest, the test paths). False (and says why): on the host."""
    app = config.app_service
    tools = image_tools(c, compose, config)
    paths = list(config.test_paths) if tool == "pytest" else ["."]
    missing = unmounted(compose, config, paths) if tool in tools else []
    if tool not in tools:
        why = f"{tool} is not in the {app!r} image (add it to the image to run it there)"
    elif tool == "pytest" and PLUGIN not in tools:
        why = (
            f"dockwork is not in the {app!r} image: its pytest plugin gives the tests "
            "databases of their own, without it they would use the stack's"
        )
    elif missing:
        shown = ", ".join("the project" if p == "." else p for p in missing)
        why = (
            f"{shown} is not mounted into the {app!r} service from here at "
            f"{config.container_workdir} (container_workdir): in its container {tool} would "
            "see the image's copy (mount the project there in the dev compose file)"
        )
    else:
        say(f"{tool} runs in the {app!r} container (as {host_ids() or 'you'}).")
        return True
    say(f"{why}; running {tool} on the host through uv.")
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
    environment = (compose.service(config.app_service) or {}).get("environment") or {}
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
