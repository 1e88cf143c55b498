"""The app against a real PostgreSQL and Redis, provided by dockwork's pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from dockwork.testing.servers.docker import LABEL, DockerBackend, docker_available
from dockwork.testing.servers.engine_api import Engine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
#: project names this suite's tests give their own test servers (one name per test)
SUITE_PROJECTS = ("dwprov", "appredis", "probe", "dockwork-health-test")


@pytest.fixture(scope="session", autouse=True)
def _reap_leftovers_of_killed_runs_of_this_suite() -> None:
    """Tests give their servers project names of their own, which no later run reuses: a
    run of this suite killed mid-test leaves containers nobody's next run would reap. Remove
    those whose owner is verifiably gone (never a live run's), as dockwork itself does."""
    if docker_available() is not None:
        return
    engine = Engine()
    found = engine.containers([f"{LABEL}.role=test-server"])
    projects = {(c.get("Labels") or {}).get(f"{LABEL}.project", "") for c in found}
    for project in sorted(p for p in projects if p.startswith(SUITE_PROJECTS)):
        DockerBackend(project, [], engine=engine).reap_orphans()


@pytest.fixture
def settings(dockwork_database_url: str, dockwork_redis_url: str) -> Settings:
    """Settings for this worker's database and Redis, with a queue of this test's own."""
    return Settings.from_env(
        {
            "DATABASE_URL": dockwork_database_url,
            "REDIS_URL": dockwork_redis_url,
            "SAQ_QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient[Any]]:
    """The real app, lifespan included."""
    with TestClient(app=create_app(settings)) as test_client:
        yield test_client


#: a cold worker (interpreter, SQLAlchemy, asyncpg, SAQ: ~2 s of CPU) takes tens of seconds
#: to start on a loaded machine (two `pytest -n auto` runs on two cores)
WORKER_START_TIMEOUT = 120


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real SAQ worker process (`saq app.worker.settings`) on the test queue, started:
    its startup ran and it reached Redis (its heartbeat file, as the Compose healthcheck
    uses). A test's deadline then measures its jobs, not the worker's cold start."""
    beat = tmp_path / "worker-heartbeat"
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SAQ_QUEUE_NAME": settings.queue_name,
        "WORKER_HEARTBEAT_FILE": str(beat),
        # its sweep every second (5 by default): a test of what it sends waits a second
        "OUTBOX_SWEEP_SECONDS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "saq", "app.worker.settings", "--verbose"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: beat.exists() or proc.poll() is not None,
            timeout=WORKER_START_TIMEOUT,
            what="the worker starting",
        )
        assert proc.poll() is None, "the worker exited during its startup"
        yield proc
    finally:
        proc.terminate()
        try:
            output = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
        print(f"--- the worker's output ---\n{output}")  # noqa: T201 - shown when the test failed


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout}s (last: {last!r})")


def unique_email() -> str:
    """An email no other test uses."""
    return f"user-{uuid.uuid4().hex[:12]}@example.test"
