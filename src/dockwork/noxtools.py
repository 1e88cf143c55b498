"""Helpers for noxfile.py: the sessions stay thin, the logic lives (and is tested) here."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import os
import secrets
import shutil
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dockwork.compose import Compose
from dockwork.config import Config, load_config
from dockwork.runner import with_interpreter

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from dockwork.testing.servers import Servers


#: how nox marks the process it runs one session of a ``--parallel`` run in
PARALLEL_WORKER = "--parallel-worker"
#: lock files held for the life of the nox process (see :func:`envdir`)
_HELD: list[IO[str]] = []


@functools.cache
def _config_for(directory: str) -> Config:
    return load_config(Path(directory))


def project_config() -> Config:
    """The project's configuration, resolved once per nox process (every session and
    helper of a run reads the same one)."""
    return _config_for(str(Path.cwd()))


def envdir(base: str | Path = ".nox") -> str:
    """Where this nox run keeps its session environments: ``.nox``, or, while another nox
    run of the same checkout holds it, a directory of this run's own (removed at exit).

    nox recreates a session's environment at the start of the session, so two runs
    sharing ``.nox`` would delete each other's environments mid-install.
    """
    import fcntl  # noqa: PLC0415 - POSIX only, needed only here

    root = Path(base)
    if PARALLEL_WORKER in sys.argv:
        return str(root)  # a session of a parallel run: the run's own process holds the lock
    root.mkdir(exist_ok=True)
    handle = (root / ".dockwork.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        own = Path(tempfile.mkdtemp(prefix="run-", dir=root)).resolve()
        atexit.register(shutil.rmtree, own, ignore_errors=True)
        print(  # noqa: T201 - nox has not started logging yet
            f"nox: {root} is in use by another nox run of this checkout; this run's "
            f"environments go to {own} (removed at the end).",
            file=sys.stderr,
        )
        return str(own)
    _HELD.append(handle)
    return str(root)


def sync(session: Any, *groups: str) -> None:
    """Install the project into the session's venv exactly as locked (``uv sync --locked``),
    and have every Python process of the session share one bytecode cache in the venv.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (many CI images and containers), each process a
    session starts (pytest and its workers, the runs and tasks a test starts) would compile
    every module it imports anew: here about a third of the suite's CPU. In the session the
    variable is unset and ``PYTHONPYCACHEPREFIX`` names a directory in the venv, so a module
    is compiled once, when something first imports it, and never written beside the
    checkout's sources. (Compiling the whole venv at install would cover only the installed
    packages, not the project's editable sources or its tests, and costs more: most of a
    venv is never imported.)"""
    location = Path(session.virtualenv.location)
    argv = ["uv", "sync", "--locked", "--inexact"]
    for group in groups:
        argv += ["--group", group]
    session.run_install(*argv, env={"UV_PROJECT_ENVIRONMENT": str(location)})
    session.env["PYTHONPYCACHEPREFIX"] = str(location / "pycache")
    session.env["PYTHONDONTWRITEBYTECODE"] = None  # None: removed from the commands' env


def compose_file_sets(config: Config) -> list[tuple[str, ...]]:
    """Every combination of compose files that can be used: the base file plus any others."""
    base, *others = config.compose_files
    sets: list[tuple[str, ...]] = [(base,)]
    for size in range(1, len(others) + 1):
        sets += [(base, *combo) for combo in combinations(others, size)]
    return sets


def example_compose(config: Config, files: Sequence[str] | None = None) -> Compose:
    """The project's Compose with the example env file (a session never reads your .env)."""
    example = config.root / ".env.example"
    env_file = str(example.name) if example.is_file() else config.env_file
    chosen = config.compose_files if files is None else tuple(files)
    return Compose(config.project_name, chosen, env_file=env_file)


def compose_config_commands(config: Config) -> list[list[str]]:
    """``docker compose … config -q`` for each combination, with the example env file."""
    return [
        example_compose(config, files).config(quiet=True) for files in compose_file_sets(config)
    ]


def check_compose(session: Any) -> None:
    """Fail when any compose-file combination does not validate."""
    config = project_config()
    for argv in compose_config_commands(config):
        session.run(*argv, external=True)


def web_checks(session: Any) -> None:
    """The frontend's lint, typecheck and unit tests, in its Node service (no Node here).

    In a Compose project of this session's own (its node_modules volume, its network),
    removed after: concurrent runs never share one.
    """
    from dockwork.compose import host_ids  # noqa: PLC0415
    from dockwork.frontend import LINT, TEST, web_command  # noqa: PLC0415

    config = project_config()
    own = f"{config.project_name}-web-{secrets.token_hex(3)}"
    compose = dataclasses.replace(example_compose(config), project_name=own, profiles=("*",))
    argv = compose.run(
        config.web_service, web_command([*LINT, *TEST]), no_deps=True, tty=False, user=host_ids()
    )
    try:
        session.run(*argv, external=True)
    finally:
        session.run(*compose.down(volumes=True), external=True, silent=True)


@contextlib.contextmanager
def servers(session: Any, *kinds: str) -> Iterator[Servers]:
    """Test servers for the session (the contract's discovery order), removed after;
    ``kinds`` narrows the project's ``test_services`` (the migrations need only PostgreSQL)."""
    from dockwork.errors import DockworkError, render  # noqa: PLC0415
    from dockwork.testing.servers import Run  # noqa: PLC0415

    config = project_config()
    if kinds:
        config = dataclasses.replace(config, test_services=kinds)
    run = Run.begin()
    run.keep_alive()
    try:
        try:
            provided = run.servers(config)
        except DockworkError as exc:
            session.error(render(exc))
        session.log(f"test servers from {provided.describe()}")
        yield provided
    finally:
        try:
            run.end()
        except DockworkError as exc:
            session.warn(render(exc))


def roundtrip_steps(config: Config) -> list[tuple[str, list[str] | None]]:
    """The round trip as (step, argv): upgrade head → downgrade base → upgrade head → drift
    check, with the project's migration tool; argv None for a step the tool does not have
    (``migration_<step> = []``). A step it needs and has no command for is a ConfigError."""
    from dockwork import migrations  # noqa: PLC0415

    def argv(step: str, **values: str) -> list[str] | None:
        given = getattr(config, migrations.STEPS[step].key)
        if given is not None and not given:
            return None  # set to []: the tool has none
        return migrations.command(config, step, **values)

    return [
        ("upgrade", migrations.upgrade_to_head(config)),
        ("downgrade", argv("downgrade", revision="base")),
        ("upgrade", migrations.upgrade_to_head(config)),
        ("check", argv("check")),
    ]


def migration_roundtrip(session: Any, admin_url: str) -> None:
    """On a fresh database: upgrade head → downgrade base → upgrade head → drift check."""
    from dockwork import urls  # noqa: PLC0415
    from dockwork.errors import DockworkError, render  # noqa: PLC0415
    from dockwork.testing import databases  # noqa: PLC0415

    config = project_config()
    try:
        steps = roundtrip_steps(config)
    except DockworkError as exc:
        session.error(render(exc))
    # unique even on a shared server (DOCKWORK_TEST_DATABASE_URL), where it is dropped first
    name = f"dw_migrations_{os.getpid()}_{secrets.token_hex(3)}"
    databases.drop(admin_url, name)
    databases.create(admin_url, name)
    url = urls.with_scheme(urls.with_database(admin_url, name), config.database_scheme)
    # passed through the environment, so the URL's password never shows in nox's log
    env = {config.database_url_env: url}
    try:
        for step, argv in steps:
            if argv is None:
                session.log(f"skipped {step}: the migration tool has none (migration_{step} = [])")
                continue
            # resolved on the session's PATH, i.e. its virtualenv
            session.run(*with_interpreter(argv, "python"), env=env)
    finally:
        databases.drop(admin_url, name)


def pytest_args(
    config: Config,
    posargs: Sequence[str],
    *marker: str,
    paths: Sequence[str] | None = None,
) -> list[str]:
    """``pytest [-m marker] [test paths unless paths were given] posargs``: ``paths``, or
    the project's test paths."""
    args = ["pytest"]
    if marker:
        args += ["-m", " and ".join(marker)]
    if not any(not a.startswith("-") and os.path.exists(a.split("::")[0]) for a in posargs):  # noqa: PTH110
        args += list(config.test_paths if paths is None else paths)
    return [*args, *posargs]


__all__ = [
    "check_compose",
    "compose_config_commands",
    "compose_file_sets",
    "envdir",
    "example_compose",
    "migration_roundtrip",
    "project_config",
    "pytest_args",
    "roundtrip_steps",
    "servers",
    "sync",
    "web_checks",
]
