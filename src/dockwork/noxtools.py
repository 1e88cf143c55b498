"""Helpers for noxfile.py: the sessions stay thin, the logic lives (and is tested) here."""

from __future__ import annotations

import contextlib
import os
import secrets
from itertools import combinations
from typing import TYPE_CHECKING, Any

from dockwork.compose import Compose
from dockwork.config import Config, load_config
from dockwork.runner import with_interpreter

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from dockwork.services import Services


def sync(session: Any, *groups: str) -> None:
    """Install the project into the session's venv exactly as locked (``uv sync --locked``)."""
    argv = ["uv", "sync", "--locked", "--inexact"]
    for group in groups:
        argv += ["--group", group]
    session.run_install(*argv, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


def compose_file_sets(config: Config) -> list[tuple[str, ...]]:
    """Every combination of compose files that can be used: the base file plus any others."""
    base, *others = config.compose_files
    sets: list[tuple[str, ...]] = [(base,)]
    for size in range(1, len(others) + 1):
        sets += [(base, *combo) for combo in combinations(others, size)]
    return sets


def compose_config_commands(config: Config) -> list[list[str]]:
    """``docker compose … config -q`` for each combination, with the example env file."""
    example = config.root / ".env.example"
    env_file = str(example.name) if example.is_file() else config.env_file
    return [
        Compose(config.project_name, files, env_file=env_file).config(quiet=True)
        for files in compose_file_sets(config)
    ]


def check_compose(session: Any) -> None:
    """Fail when any compose-file combination does not validate."""
    config = load_config()
    for argv in compose_config_commands(config):
        session.run(*argv, external=True)


@contextlib.contextmanager
def services(session: Any) -> Iterator[Services]:
    """PostgreSQL and Redis for the session (the contract's discovery order), torn down after."""
    from dockwork.errors import DockworkError  # noqa: PLC0415
    from dockwork.services import discover  # noqa: PLC0415

    config = load_config()
    try:
        backend = discover(config.project_name)
        provided = backend.start()
    except DockworkError as exc:
        session.error(exc.message)
    try:
        session.log(f"services from {backend.name}: {provided.database_url} {provided.redis_url}")
        yield provided
    finally:
        backend.stop()


def migration_roundtrip(session: Any, admin_url: str) -> None:
    """On a fresh database: upgrade head → downgrade base → upgrade head → drift check."""
    from dockwork import testdb  # noqa: PLC0415

    config = load_config()
    # unique even on a shared server (DATABASE_URL), where it is dropped first
    name = f"dw_migrations_{os.getpid()}_{secrets.token_hex(3)}"
    testdb.drop(admin_url, name)
    testdb.create(admin_url, name)
    env = {"DATABASE_URL": testdb.with_database(admin_url, name)}
    # resolved on the session's PATH, i.e. its virtualenv
    tool = with_interpreter(config.alembic_command, "python")
    try:
        for step in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
            session.run(*tool, *step, env=env)
    finally:
        testdb.drop(admin_url, name)


def pytest_args(config: Config, posargs: Sequence[str], *marker: str) -> list[str]:
    """``pytest [-m marker] [test paths unless paths were given] posargs``."""
    args = ["pytest"]
    if marker:
        args += ["-m", " and ".join(marker)]
    if not any(not a.startswith("-") and os.path.exists(a.split("::")[0]) for a in posargs):  # noqa: PTH110
        args += list(config.test_paths)
    return [*args, *posargs]


__all__ = [
    "check_compose",
    "compose_config_commands",
    "compose_file_sets",
    "migration_roundtrip",
    "pytest_args",
    "services",
    "sync",
]
