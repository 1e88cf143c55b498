"""One xdist worker's death does not take the test servers from the others.

A small project runs under `pytest -n 2`; the worker that started the run's servers kills
itself (``os._exit``, as an OOM kill or a crash would end it) in its first test. xdist
replaces it; every other test, before and after, must still reach PostgreSQL and Redis.
Then the run ends, and what it started is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dockwork.testing.servers import embedded
from tests.helpers import (
    dockwork_containers,
    env_without_services,
    gone,
    needs_docker,
    probe_project,
)

MIGRATE = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (n int)")
"""
TESTS = """
import os, time
from pathlib import Path
import psycopg, pytest, redis

MARK = Path(os.environ["CRASH_MARK"])

@pytest.fixture
def servers(dockwork_servers, dockwork_database_url, dockwork_redis_url):
    # the worker that started the run's servers dies once, in its first test
    if dockwork_servers.details["started_by"] == str(os.getpid()) and not MARK.exists():
        MARK.write_text(str(os.getpid()))
        os._exit(1)
    return dockwork_database_url, dockwork_redis_url

@pytest.mark.parametrize("n", range(12))
def test_servers_answer(servers, n):
    database, cache = servers
    time.sleep(0.3)  # long enough that the survivor's tests run after the death
    with psycopg.connect(database, connect_timeout=10) as conn:
        conn.execute("INSERT INTO items VALUES (%s)", (n,))
    assert redis.Redis.from_url(cache, socket_timeout=10).ping()
"""


def run(backend: str, tmp: Path, project: str) -> subprocess.CompletedProcess[str]:
    probe_project(tmp, project, {"migrate.py": MIGRATE, "test_probe.py": TESTS})
    env = {**env_without_services(), "DOCKWORK_TEST_BACKEND": backend}
    env["CRASH_MARK"] = str(tmp / "crashed")
    if backend == "embedded":
        env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "-rf"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def check(result: subprocess.CompletedProcess[str], tmp: Path) -> None:
    out = result.stdout + result.stderr
    assert (tmp / "crashed").is_file(), "the worker that started the servers never died:\n" + out
    assert "crashed" in out, out  # xdist saw a worker die, and replaced it
    assert "11 passed" in out, out  # every test but the one the dying worker ran
    assert "1 failed" in out, out
    assert "Connection refused" not in out, out
    assert "could not connect" not in out, out


@pytest.mark.embedded
@pytest.mark.skipif(
    embedded.missing(("postgres", "redis")) is not None, reason="needs the embedded wheels"
)
def test_a_dead_worker_leaves_the_embedded_servers_to_the_others() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        project = f"dwcrash{os.getpid()}e"
        result = run("embedded", tmp, project)
        check(result, tmp)
        # the run is over: its records are released (the watchdog too), its processes gone
        deadline = time.monotonic() + 20
        while list(embedded.state_dir(project).glob("run-*.json")):
            assert time.monotonic() < deadline, "the run's servers outlived it"
            time.sleep(0.2)


def test_a_dead_worker_leaves_the_docker_servers_to_the_others() -> None:
    needs_docker()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        project = f"dwcrash{os.getpid()}d"
        result = run("docker", tmp, project)
        check(result, tmp)
        assert gone(project), dockwork_containers(project)
