"""dockwork's pytest plugin on a small project of its own: per-worker isolation under xdist."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from dockwork.services.docker import LABEL, docker_available
from tests.helpers import env_without_services

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.docker

PYPROJECT = """
[project]
name = "plugin-probe"
version = "0"

[tool.dockwork]
migrate_command = ["python", "migrate.py"]
template_inputs = ["migrate.py"]
"""

MIGRATE = """
import os, sys, psycopg
if os.environ.get("BREAK_MIGRATION"):
    sys.exit("migration exploded on purpose")
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (worker text NOT NULL)")
"""

TESTS = """
import os, uuid
import psycopg, pytest, redis

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

@pytest.mark.parametrize("n", range(8))
def test_isolated(n, dockwork_database_url, dockwork_redis_url):
    with psycopg.connect(dockwork_database_url) as conn:
        conn.execute("INSERT INTO items VALUES (%s)", (WORKER,))
        others = conn.execute("SELECT count(*) FROM items WHERE worker <> %s", (WORKER,)).fetchone()
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert others == (0,), "another worker's rows are visible"
    assert name.endswith(WORKER.replace("-", "_")), name
    r = redis.Redis.from_url(dockwork_redis_url)
    r.set(f"{WORKER}:{uuid.uuid4()}", 1)
    assert all(k.decode().startswith(WORKER + ":") for k in r.keys("*")), "shared Redis db"
"""


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / "plugin-probe"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "migrate.py").write_text(textwrap.dedent(MIGRATE))
    (root / "test_probe.py").write_text(textwrap.dedent(TESTS))
    return root


def run_pytest(root: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = env_without_services()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def leftovers(project: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    if (reason := docker_available()) is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    return make_project(tmp_path)


def test_each_xdist_worker_gets_its_own_database_and_redis(probe: Path) -> None:
    result = run_pytest(probe, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout
    assert leftovers("plugin-probe") == "", "the run removed its containers"


def test_without_xdist_services_start_lazily_and_go_away(probe: Path) -> None:
    result = run_pytest(probe, "-k", "test_isolated and 0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert leftovers("plugin-probe") == ""


def test_failing_migration_is_one_clear_error(probe: Path) -> None:
    result = run_pytest(probe, "-x", BREAK_MIGRATION="1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "migrating the test template with `python migrate.py` failed" in output
    assert "migration exploded on purpose" in output
    assert "Traceback" not in output
    assert leftovers("plugin-probe") == ""


SLOW = """
import pathlib, time

def test_slow(dockwork_services):
    pathlib.Path("started").write_text(dockwork_services.database_url)
    time.sleep(120)
"""


def test_sigterm_mid_run_still_tears_down(probe: Path) -> None:
    (probe / "test_probe.py").unlink()
    (probe / "test_slow.py").write_text(textwrap.dedent(SLOW))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=probe,
        env=env_without_services(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (probe / "started").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the test never started"
            time.sleep(0.1)
        assert leftovers("plugin-probe") != "", "the services are up while the test runs"
        proc.send_signal(signal.SIGTERM)  # what CI does when a job is cancelled
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert leftovers("plugin-probe") == "", f"SIGTERM skipped teardown:\n{output}"
