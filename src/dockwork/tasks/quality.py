"""The quality loop, in the app's dev image: format, lint, typecheck, test; and `inv ci`.

Containers run as the host uid/gid, so files the tools rewrite stay yours. ``--local``
runs the same tools on the host through uv instead.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

from invoke.exceptions import Exit
from invoke.tasks import task

from dockwork import runner
from dockwork.services.readiness import libpq_url
from dockwork.tasks._base import (
    clean_errors,
    host_ids,
    project,
    remainder_args,
    run,
)
from dockwork.testdb import with_database

if TYPE_CHECKING:
    from collections.abc import Sequence

    from invoke.context import Context

    from dockwork.compose import Compose
    from dockwork.config import Config

FORMAT = (("ruff", "format", "."), ("ruff", "check", "--fix", "."))
LINT = (("ruff", "check", "."), ("ruff", "format", "--check", "."))
TYPECHECK = (("mypy",),)
LOCAL_HELP = "run on the host through uv instead of in the dev container"


def _tool(c: Context, commands: Sequence[Sequence[str]], *, local: bool) -> None:
    """Run each command in the dev container (or locally); all run, the first failure wins."""
    failed: list[tuple[str, int]] = []
    if local:
        argvs = [["uv", "run", "--", *cmd] for cmd in commands]
    else:
        config, compose = project()
        argvs = [_in_dev(compose, config, cmd, deps=False) for cmd in commands]
    for argv in argvs:
        result = run(c, argv, pty=False, warn=True)
        if not result.ok:
            failed.append((shlex.join(argv), result.exited))
    if failed:
        raise Exit(
            "dockwork: failed: " + "; ".join(f"`{cmd}` (exit {code})" for cmd, code in failed),
            code=failed[0][1],
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


def test_server_urls(compose: Compose, config: Config) -> tuple[str, str]:
    """The stack's PostgreSQL (its maintenance database) and Redis, as the app sees them.

    The tests get their own databases on that server (cloned from a migrated template) and
    their own Redis logical databases; the dev database itself is never used.
    """
    resolved = json.loads(runner.run(compose.config().add_option("--format", "json")).stdout)
    environment = resolved["services"][config.app_service].get("environment") or {}
    db_url, redis_url = environment.get("DATABASE_URL"), environment.get("REDIS_URL")
    if not db_url or not redis_url:
        raise Exit(
            f"dockwork: the {config.app_service!r} service has no DATABASE_URL/REDIS_URL in its "
            "environment; `inv test` needs them to find the stack's PostgreSQL and Redis.",
            code=2,
        )
    return with_database(libpq_url(db_url), "postgres"), str(redis_url)


@task(help={"local": "run pytest on the host (it starts its own PostgreSQL and Redis)"})
@clean_errors
def test(c: Context, local: bool = False) -> None:  # noqa: PT028 - a task, not a test
    """Run pytest in the dev container against test databases on the stack (`-- ARGS`)."""
    args = remainder_args(c)
    if local:
        run(c, ["uv", "run", "--", "pytest", *args])
    else:
        config, compose = project()
        admin, redis_url = test_server_urls(compose, config)
        # passed by name (-e NAME): the values reach the container, not the echoed command
        names = {
            "DOCKWORK_TEST_DATABASE_URL": admin,
            "DOCKWORK_TEST_REDIS_URL": redis_url,
            # anything reading these directly gets the server, never the dev database
            "DATABASE_URL": admin,
            "REDIS_URL": redis_url,
        }
        argv = _in_dev(compose, config, ["pytest", *args], deps=True, env=list(names))
        run(c, argv, pty=False, env=names)


@task(help={"reuse": "reuse the session environments (nox -R)"})
@clean_errors
def ci(c: Context, reuse: bool = False) -> None:
    """Run exactly what CI runs: the default nox sessions (`-- ARGS` go to nox)."""
    run(c, ["nox", *(["-R"] if reuse else []), *remainder_args(c)])
