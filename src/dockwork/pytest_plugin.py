"""pytest plugin: real PostgreSQL and Redis for the tests, isolated per xdist worker.

Servers come from dockwork's own settings (``DOCKWORK_TEST_DATABASE_URL`` /
``DOCKWORK_TEST_REDIS_URL``) when given, else from labelled containers (see
:mod:`dockwork.testservers`); the app's ``DATABASE_URL`` / ``REDIS_URL`` are never used.
Nothing starts until a test asks: the run's first process that needs servers starts them,
the others (xdist workers) share them, and the top process removes them at the end. Each
worker gets its own database, cloned from one migrated template, and its own Redis logical
database.

Fixtures: ``dockwork_servers`` (the servers), ``dockwork_database_url`` and
``dockwork_redis_url`` (this worker's own database and Redis database).
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from dockwork import urls
from dockwork.config import Config, load_config
from dockwork.errors import PREFIX, DockworkError, describe, is_library_error, render

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from dockwork.testservers.base import Servers
    from dockwork.testservers.run import Run

T = TypeVar("T")
RUN: pytest.StashKey[Run] = pytest.StashKey()
TOP = pytest.StashKey[bool]()
#: keys in xdist's workerinput: how a worker joins its controller's run
WORKER_RUN = "dockwork_run_dir"


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
    """[tool.dockwork] of the project under test, with the command line's overrides."""
    overrides = {"reuse": True} if config.option.dockwork_reuse else None
    return load_config(Path(config.rootpath), overrides=overrides, require_compose_files=False)


def _stop_on_signals() -> None:
    """SIGTERM (CI cancelling, ``kill``) and SIGHUP unwind like Ctrl-C: teardown still runs."""

    def handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in {signal.SIG_DFL, None}:
            signal.signal(signum, handler)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Begin the run (or join it, in an xdist worker); nothing is started yet."""
    from dockwork.testservers.run import Run  # noqa: PLC0415 - loaded in every pytest run

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and WORKER_RUN in workerinput:
        config.stash[RUN] = Run.join(workerinput[WORKER_RUN])
        config.stash[TOP] = False
        return
    run = Run.begin()
    run.keep_alive()
    config.stash[RUN] = run
    config.stash[TOP] = True
    _stop_on_signals()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: each worker joins the controller's run."""
    run = node.config.stash.get(RUN, None)
    if run is not None:
        node.workerinput[WORKER_RUN] = str(run.directory)


def _end(config: pytest.Config) -> DockworkError | None:
    """The top process removes what the run started (once); the error if it could not."""
    run = config.stash.get(RUN, None)
    if run is None or not config.stash.get(TOP, False):
        return None
    del config.stash[RUN]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    servers = run.recorded()
    reaped = int((servers.details if servers else {}).get("reaped", 0))
    if reaped and reporter is not None:
        reporter.write_line(
            f"{PREFIX}removed {reaped} test container(s) left by runs of this project that are "
            "gone (killed before they could clean up)."
        )
    try:
        run.end()
    except DockworkError as exc:
        if reporter is not None:
            reporter.write_line(render(exc), red=True)
        return exc
    return None


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
    from dockwork.testservers.discovery import choice  # noqa: PLC0415

    try:
        return f"{PREFIX}test servers: {choice(_project(config))}"
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
def _dockwork_cleanup() -> Iterator[list[str]]:
    """Collects what the fixtures' cleanups could not do (the server may be gone: a test
    stopped it, it crashed) and, torn down after them, reports it as one failure of
    ``dockwork:`` lines, not a traceback each."""
    errors: list[str] = []
    yield errors
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


def _teardown(errors: list[str], what: str, action: Callable[[], object]) -> None:
    """Run a fixture's cleanup; a failure is noted for :func:`_dockwork_cleanup`."""
    try:
        action()
    except DockworkError as exc:
        errors.append(render(exc))
    except Exception as exc:
        if not is_library_error(exc):
            raise
        errors.append(f"{PREFIX}{what} failed: {describe(exc)}.")


@pytest.fixture(scope="session")
def dockwork_servers(request: pytest.FixtureRequest) -> Servers:
    """The run's PostgreSQL and Redis servers (admin URLs), started on first use."""
    run = request.config.stash[RUN]
    return _or_fail(request, lambda: run.servers(_project(request.config)))


def _worker_id(request: pytest.FixtureRequest) -> str:
    workerinput: dict[str, Any] | None = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


def _not_asked(kind: str, setting: str) -> DockworkError:
    return DockworkError(
        f"a test asked for {kind}, but this project's tests do not use it (test_services in "
        f"[tool.dockwork] has no {setting!r}). Add {setting!r} to test_services."
    )


@pytest.fixture(scope="session")
def dockwork_database_url(
    request: pytest.FixtureRequest, dockwork_servers: Servers, _dockwork_cleanup: list[str]
) -> Iterator[str]:
    """This worker's own database, cloned from the migrated template, in the project's
    URL scheme (``database_scheme``)."""
    from dockwork import testdb  # noqa: PLC0415

    project = _project(request.config)
    admin = dockwork_servers.database_url
    if admin is None:
        _fail(request, _not_asked("a PostgreSQL database", "postgres"))
        return
    run = request.config.stash[RUN]
    inputs = _or_fail(request, project.template_paths)
    # A template keyed by the migrations' content can be shared across runs: a warm run
    # with reused containers skips migrating. Per-worker clones are always this run's own.
    template = f"dw_tpl_{testdb.fingerprint(inputs)}"
    spec = testdb.TemplateSpec(
        template,
        project.migrate_command,
        project.root,
        project.database_url_env,
        project.database_scheme,
    )
    name = f"dw_{run.id}_{_worker_id(request)}".lower().replace("-", "_")
    _or_fail(request, lambda: testdb.ensure_template(admin, spec))
    _or_fail(request, lambda: testdb.clone(admin, template, name))
    yield urls.with_scheme(urls.with_database(admin, name), project.database_scheme)
    drop = lambda: testdb.drop(admin, name)  # noqa: E731
    _teardown(_dockwork_cleanup, f"dropping the test database {name!r}", drop)


@pytest.fixture(scope="session")
def dockwork_redis_url(
    request: pytest.FixtureRequest, dockwork_servers: Servers, _dockwork_cleanup: list[str]
) -> Iterator[str]:
    """This worker's own Redis logical database: empty when claimed, flushed after."""
    from dockwork import testdb  # noqa: PLC0415

    if dockwork_servers.redis_url is None:
        _fail(request, _not_asked("a Redis database", "redis"))
        return
    owner = f"{request.config.stash[RUN].id}-{_worker_id(request)}"
    # a server dockwork started (reused ones too) holds only what tests wrote
    dedicated = dockwork_servers.backend != "external"
    claim = testdb.RedisClaim(dockwork_servers.redis_url, owner=owner, dedicated=dedicated)
    url = _or_fail(request, claim.acquire)
    yield url
    _teardown(_dockwork_cleanup, "releasing the test Redis database", claim.release)
