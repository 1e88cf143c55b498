"""pytest plugin: real PostgreSQL and Redis for the tests, isolated per xdist worker.

Services come from ``DATABASE_URL``/``REDIS_URL`` when both are set, else from labelled
containers (see :mod:`dockwork.services`). Without xdist they start on the first test that
needs them; with ``-n`` the controller starts them once, before the workers, and hands the
URLs down through the environment. Each worker gets its own database, cloned from one
migrated template, and its own Redis logical database.

Fixtures: ``dockwork_services`` (server URLs), ``dockwork_database_url`` and
``dockwork_redis_url`` (this worker's own).
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dockwork.config import Config, load_config
from dockwork.errors import DockworkError
from dockwork.services import Backend, Services, discover

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

ENV_DB = "DOCKWORK_TEST_DATABASE_URL"
ENV_REDIS = "DOCKWORK_TEST_REDIS_URL"
ENV_RUN = "DOCKWORK_TEST_RUN"
STASH_BACKEND = pytest.StashKey[Backend]()
STASH_SERVICES = pytest.StashKey[Services]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """dockwork's command-line options."""
    group = parser.getgroup("dockwork", "dockwork test services")
    group.addoption(
        "--dockwork-reuse",
        action="store_true",
        default=None,
        help="keep the PostgreSQL/Redis containers between runs (also DOCKWORK_REUSE=1)",
    )


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _uses_xdist(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(numprocesses) and getattr(config.option, "dist", "no") != "no"


def _project_config(config: pytest.Config) -> Config:
    return load_config(Path(config.rootpath), require_compose_files=False)


def _start(config: pytest.Config) -> Services:
    """Start (or find) the services for this process tree, once."""
    services = config.stash.get(STASH_SERVICES, None)
    if services is not None:
        return services
    inherited_db, inherited_redis = os.environ.get(ENV_DB), os.environ.get(ENV_REDIS)
    if inherited_db and inherited_redis:  # an xdist worker: the controller provisioned
        services = Services(inherited_db, inherited_redis, "inherited")
    else:
        backend = discover(_project_config(config).project_name, reuse=config.option.dockwork_reuse)
        config.stash[STASH_BACKEND] = backend
        _stop_on_sigterm()
        services = backend.start()
    config.stash[STASH_SERVICES] = services
    return services


def _stop_on_sigterm() -> None:
    """SIGTERM (CI cancelling, ``kill``) unwinds like Ctrl-C, so teardown still runs."""

    def handler(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) in {signal.SIG_DFL, None}:
        signal.signal(signal.SIGTERM, handler)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Name the run; under xdist, provision once in the controller before the workers start."""
    if _is_xdist_worker(config):
        return
    # Names this run's databases. A pid alone is not unique: in containers (`inv test`)
    # pids repeat, and servers from DATABASE_URL may be shared by other machines' runs.
    os.environ.setdefault(ENV_RUN, f"{os.getpid()}_{secrets.token_hex(3)}")
    if not _uses_xdist(config):
        return
    try:
        services = _start(config)
    except DockworkError as exc:
        raise pytest.UsageError(f"dockwork: {exc.message}") from exc
    os.environ[ENV_DB] = services.database_url
    os.environ[ENV_REDIS] = services.redis_url


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove what this process started."""
    backend = config.stash.get(STASH_BACKEND, None)
    if backend is not None:
        backend.stop()
        del config.stash[STASH_BACKEND]


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say where the services are, when they were started before collection."""
    services = config.stash.get(STASH_SERVICES, None)
    if services is None:
        return None
    return (
        f"dockwork: services from {services.backend}: {services.database_url} {services.redis_url}"
    )


@pytest.fixture(scope="session")
def dockwork_services(request: pytest.FixtureRequest) -> Services:
    """Admin URLs of the PostgreSQL and Redis servers the tests use."""
    try:
        return _start(request.config)
    except DockworkError as exc:
        pytest.exit(f"dockwork: {exc.message}", returncode=3)
        raise  # pragma: no cover - pytest.exit raises


def _worker_id(request: pytest.FixtureRequest) -> str:
    workerinput: dict[str, Any] | None = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


@pytest.fixture(scope="session")
def dockwork_database_url(
    request: pytest.FixtureRequest, dockwork_services: Services
) -> Iterator[str]:
    """This worker's own database, cloned from the migrated template (libpq URL)."""
    from dockwork import testdb  # noqa: PLC0415

    project = _project_config(request.config)
    run = os.environ.get(ENV_RUN) or f"{os.getpid()}_{secrets.token_hex(3)}"
    inputs = [project.root / p for p in project.template_inputs]
    # A template keyed by the migrations' content can be shared across runs: a warm run
    # with reused containers skips migrating. Per-worker clones are always this run's own.
    template = f"dw_tpl_{testdb.fingerprint(inputs)}"
    spec = testdb.TemplateSpec(template, project.migrate_command, project.root)
    admin = dockwork_services.database_url
    name = f"dw_{run}_{_worker_id(request)}".lower().replace("-", "_")
    try:
        testdb.ensure_template(admin, spec)
        testdb.clone(admin, template, name)
    except DockworkError as exc:
        pytest.exit(f"dockwork: {exc.message}", returncode=3)
    yield testdb.with_database(admin, name)
    testdb.drop(admin, name)


@pytest.fixture(scope="session")
def dockwork_redis_url(dockwork_services: Services) -> Iterator[str]:
    """This worker's own Redis logical database, flushed before and after."""
    from dockwork import testdb  # noqa: PLC0415

    claim = testdb.RedisClaim(dockwork_services.redis_url)
    try:
        url = claim.acquire()
    except DockworkError as exc:
        pytest.exit(f"dockwork: {exc.message}", returncode=3)
    yield url
    claim.release()
