"""pytest plugin: real PostgreSQL and Redis for the tests, isolated per xdist worker.

Servers come from dockwork's own settings (``DOCKWORK_TEST_DATABASE_URL`` /
``DOCKWORK_TEST_REDIS_URL``) when given, else from labelled containers or local processes
(see :mod:`dockwork.testing.servers`); the app's ``DATABASE_URL`` / ``REDIS_URL`` are never
used. The run's first process that needs servers starts them, the others (xdist workers)
share them, and the top process removes them at the end. Each process gets its own
database, cloned from one migrated template, and its own Redis logical database.

When the project sets ``test_env``, the servers are started as pytest starts, and each
process's variables are set *before any conftest or test module is imported*, so settings
read at import time see them. Otherwise nothing starts until a test asks.

Fixtures: ``dockwork_servers`` (the servers), ``dockwork_database`` / ``dockwork_redis``
(this process's own, structured: URLs and parts), ``dockwork_database_url`` /
``dockwork_redis_url`` (their URLs), ``dockwork_services`` (compose services run as test
servers: host and published ports); with ``pytest_databases = true``, pytest-databases'
``postgres_service`` and ``redis_service`` (see :mod:`dockwork.testing.pytest_databases`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from dockwork.config import Config, load_config
from dockwork.errors import PREFIX, DockworkError, render

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from dockwork.kinds.templates import Database, RedisDatabase, Service
    from dockwork.testing.servers.base import Servers
    from dockwork.testing.servers.process import ProcessServers
    from dockwork.testing.servers.testrun import Run

T = TypeVar("T")
RUN: pytest.StashKey[Run] = pytest.StashKey()
TOP = pytest.StashKey[bool]()
PROJECT = pytest.StashKey[Config]()
LOCAL: pytest.StashKey[ProcessServers] = pytest.StashKey()
#: keys in xdist's workerinput: how a worker joins its controller's run
WORKER_RUN = "dockwork_run_dir"
#: the top process's run directory, for its xdist workers (they read it before conftests)
RUN_ENV = "PYTEST_DOCKWORK_RUN"


def pytest_addoption(parser: pytest.Parser) -> None:
    """dockwork's command-line options."""
    group = parser.getgroup("dockwork", "dockwork test servers")
    group.addoption(
        "--dockwork-reuse",
        action="store_true",
        default=None,
        help="keep the PostgreSQL/Redis containers between runs (also DOCKWORK_REUSE=1)",
    )


def _project(config: pytest.Config) -> Config:
    """[tool.dockwork] of the project under test, with the command line's overrides
    (resolved once per process)."""
    found = config.stash.get(PROJECT, None)
    if found is None:
        option = getattr(config.option, "dockwork_reuse", None)
        early = getattr(config.known_args_namespace, "dockwork_reuse", None)
        overrides = {"reuse": True} if option or early else None
        found = load_config(Path(config.rootpath), overrides=overrides, require_compose_files=False)
        config.stash[PROJECT] = found
    return found


def _stop_on_signals() -> None:
    """SIGTERM (CI cancelling, ``kill``) and SIGHUP unwind like Ctrl-C: teardown still runs."""

    def handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in {signal.SIG_DFL, None}:
            signal.signal(signum, handler)


def _begin(config: pytest.Config) -> None:
    """Begin the run in the top process, or join it in an xdist worker (once)."""
    from dockwork.testing.servers.testrun import Run  # noqa: PLC0415 - loaded in every pytest run

    if RUN in config.stash:
        return
    joined = _joined(config)
    if joined is not None:
        config.stash[RUN] = joined
        config.stash[TOP] = False
        return
    run = Run.begin()
    run.keep_alive()
    config.stash[RUN] = run
    config.stash[TOP] = True
    # for this run's xdist workers; a pytest run by a test (another process tree) begins
    # its own: a worker joins only when this process is its parent
    os.environ[RUN_ENV] = str(run.directory)
    _stop_on_signals()


def _joined(config: pytest.Config) -> Run | None:
    """The run this xdist worker belongs to: its controller's, named by workerinput (from
    pytest_configure on) or by the environment the controller passed it (earlier)."""
    from dockwork.testing.servers.testrun import OWNER, Run  # noqa: PLC0415

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and WORKER_RUN in workerinput:
        return Run.join(workerinput[WORKER_RUN])
    directory = os.environ.get(RUN_ENV)
    if not directory or not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    try:
        owner = json.loads((Path(directory) / OWNER).read_text())["owner"]["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Run.join(directory) if owner == os.getppid() else None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest is imported: begin or join the run, and with ``test_env`` start
    the servers and set this process's variables (so settings read at import see them)."""
    options = early_config.known_args_namespace
    if getattr(options, "help", False) or getattr(options, "version", False):
        return
    try:
        project = _project(early_config)
    except DockworkError:
        return  # said again, with its message, when a test asks for a server
    if not project.test_env:
        return
    _begin(early_config)
    # a conftest that fails to import ends pytest before its session, so before
    # sessionfinish and unconfigure: the config's cleanups still run then (and once more
    # after unconfigure otherwise, when there is nothing left to end)
    early_config.add_cleanup(functools.partial(_ended, early_config))
    try:
        os.environ.update(_local(early_config).environment())
    except DockworkError as exc:
        _end(early_config)
        raise pytest.UsageError(
            f"{render(exc)}\n(dockwork sets test_env's variables before the tests are "
            "collected: nothing ran.)"
        ) from None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Begin the run (or join it, in an xdist worker) if that did not happen earlier."""
    _begin(config)


def _local(config: pytest.Config) -> ProcessServers:
    """This process's share of the run's servers."""
    from dockwork.testing.servers.process import ProcessServers  # noqa: PLC0415

    local = config.stash.get(LOCAL, None)
    if local is None:
        local = config.stash[LOCAL] = ProcessServers(config.stash[RUN], _project(config))
    return local


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: each worker joins the controller's run."""
    run = node.config.stash.get(RUN, None)
    if run is not None:
        node.workerinput[WORKER_RUN] = str(run.directory)


def _end(config: pytest.Config) -> DockworkError | None:
    """Give back this process's databases; the top process then removes what the run
    started (once). The error if it could not."""
    local = config.stash.get(LOCAL, None)
    leftovers = local.close() if local is not None else []
    run = config.stash.get(RUN, None)
    if run is None or not config.stash.get(TOP, False):
        return None
    del config.stash[RUN]
    say = _sayer(config)
    for line in leftovers:
        say(line, red=True)
    servers = run.recorded()
    reaped = int((servers.details if servers else {}).get("reaped", 0))
    if reaped:
        say(
            f"{PREFIX}removed {reaped} test container(s) left by runs of this project that are "
            "gone (killed before they could clean up)."
        )
    try:
        run.end()
    except DockworkError as exc:
        say(render(exc), red=True)
        return exc
    return DockworkError("\n".join(leftovers)) if leftovers else None


def _ended(config: pytest.Config) -> None:
    """:func:`_end` as a config cleanup (its error, if any, is said by :func:`_end`)."""
    _end(config)


def _sayer(config: pytest.Config) -> Callable[..., None]:
    """Lines for the terminal: pytest's reporter, or stderr where there is none yet (a
    conftest failed to import before pytest configured it)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        return reporter.write_line  # type: ignore[no-any-return]

    def to_stderr(line: str, **_markup: bool) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return to_stderr


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last test (and every xdist worker): release the servers; a run that could
    not clean up does not pass."""
    error = _end(session.config)
    if error is not None and exitstatus == 0:
        session.exitstatus = error.exit_code


def pytest_unconfigure(config: pytest.Config) -> None:
    """Release the servers if the session never finished (a usage error, an interrupt)."""
    _end(config)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which test servers the run uses (passwords masked)."""
    if not config.stash.get(TOP, False):
        return None
    from dockwork.testing.servers.discovery import choice  # noqa: PLC0415

    try:
        project = _project(config)
        run = config.stash.get(RUN, None)
        # the run's own decision: the fixtures that start the servers read it, unasked
        decision = run.decision(project) if run is not None and project.test_services else None
        return f"{PREFIX}test servers: {choice(project, decision)}"
    except DockworkError as exc:
        return render(exc)


def _fail(request: pytest.FixtureRequest, exc: DockworkError) -> NoReturn:
    """One message, no traceback, and the session stops. Called outside any ``except``, so
    no exception chain is shown.

    An xdist worker cannot end the session itself (the controller would report an internal
    error): it fails the test at hand with the message alone and asks the controller to
    stop, which reports "Interrupted: <message>".
    """
    message = render(exc)
    if getattr(request.config, "workerinput", None) is None:
        plugins = request.config.pluginmanager
        reporter, capture = (
            plugins.get_plugin("terminalreporter"),
            plugins.get_plugin("capturemanager"),
        )
        if reporter is not None:
            # the fixture's output is being captured: the message goes to the terminal itself
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.write_line(message, red=True, bold=True)
        pytest.exit(
            "dockwork could not prepare the test servers (the reason is above)", exc.exit_code
        )
    request.session.shouldstop = message
    pytest.fail(message, pytrace=False)


def _or_fail(request: pytest.FixtureRequest, action: Callable[[], T]) -> T:
    """``action()``, or :func:`_fail` with its error."""
    try:
        return action()
    except DockworkError as exc:
        error = exc
    _fail(request, error)


@pytest.fixture(scope="session")
def _dockwork_cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """Torn down after every fixture that hands out a database: gives back this process's
    databases and reports what could not be done (the server may be gone: a test stopped
    it, it crashed) as one failure of ``dockwork:`` lines, not a traceback each."""
    yield
    local = request.config.stash.get(LOCAL, None)
    errors = local.close() if local is not None else []
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _dockwork_test_env(request: pytest.FixtureRequest) -> None:
    """With ``test_env``, every process running tests gives its databases back at the end."""
    if request.config.stash.get(LOCAL, None) is not None:
        request.getfixturevalue("_dockwork_cleanup")


@pytest.fixture(scope="session")
def dockwork_servers(request: pytest.FixtureRequest) -> Servers:
    """The run's PostgreSQL and Redis servers (admin URLs), started on first use."""
    return _or_fail(request, lambda: _local(request.config).servers())


@pytest.fixture(scope="session")
def dockwork_database(request: pytest.FixtureRequest, _dockwork_cleanup: None) -> Database:
    """This process's own database, cloned from the migrated template: ``url`` (the
    project's scheme, ``database_scheme``), ``libpq_url``, ``host``, ``port``, ``user``,
    ``password``, ``database``."""
    return _or_fail(request, lambda: _local(request.config).database())


@pytest.fixture(scope="session")
def dockwork_database_url(dockwork_database: Database) -> str:
    """This process's own database's URL, in the project's scheme (``database_scheme``)."""
    return dockwork_database.url


@pytest.fixture(scope="session")
def dockwork_redis(request: pytest.FixtureRequest, _dockwork_cleanup: None) -> RedisDatabase:
    """This process's own Redis logical database (empty when claimed, flushed after):
    ``url``, ``host``, ``port``, ``password``, ``db``."""
    return _or_fail(request, lambda: _local(request.config).redis())


@pytest.fixture(scope="session")
def dockwork_redis_url(dockwork_redis: RedisDatabase) -> str:
    """This process's own Redis logical database's URL."""
    return dockwork_redis.url


@pytest.fixture(scope="session")
def dockwork_services(request: pytest.FixtureRequest) -> dict[str, Service]:
    """The compose services run as test servers (``test_services`` naming services of the
    compose files), by name: ``host``, ``ports`` (container port → published port) and
    ``url(port, scheme="http")``. One container per service for the whole run, shared by
    every xdist worker."""
    return _or_fail(request, lambda: _local(request.config).services())


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """``pytest_databases = true``: right behind each pytest-databases module a suite
    loads (``pytest_plugins``), dockwork's fixtures of the same names (they win)."""
    from dockwork.testing import pytest_databases  # noqa: PLC0415 - no third-party import in it

    module = getattr(plugin, "__name__", "")
    if module not in pytest_databases.MODULES:
        return
    config = manager.get_plugin("pytestconfig")
    if not isinstance(config, pytest.Config):
        return
    try:
        wanted = _project(config).pytest_databases
    except DockworkError:
        return  # said when a test asks for a server
    if wanted:
        pytest_databases.stand_in(module, manager)
