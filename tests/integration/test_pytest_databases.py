"""`pytest_databases = true`: a suite written on pytest-databases' fixtures, loaded through
`pytest_plugins` as its README says, runs on dockwork's servers, each xdist worker on its
own database, with no change to a test file and no pytest-databases container."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.helpers import env_without_services, probe_project

if TYPE_CHECKING:
    from pathlib import Path

pytest.importorskip("pytest_databases", reason="the dev group installs pytest-databases")

MIGRATE = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (worker text)")
"""
CONFTEST = """
pytest_plugins = ["pytest_databases.docker.postgres", "pytest_databases.docker.redis"]
"""
TESTS = """
import os, psycopg, pytest
from pathlib import Path
from redis import Redis

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

@pytest.mark.parametrize("n", range(4))
def test_postgres_service(postgres_service, n):
    dsn = (f"host={postgres_service.host} port={postgres_service.port} "
           f"user={postgres_service.user} password={postgres_service.password} "
           f"dbname={postgres_service.database}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO items VALUES (%s)", (WORKER,))
        workers = {r[0] for r in conn.execute("SELECT worker FROM items")}
    assert workers == {WORKER}, "a database of this worker's own, migrated"
    Path("seen", f"{WORKER}-{postgres_service.database}").touch()

def test_postgres_connection(postgres_connection):
    assert postgres_connection.execute("SELECT count(*) FROM items").fetchone()[0] >= 0

def test_redis_service(redis_service, redis_host, redis_port):
    client = Redis(host=redis_service.host, port=redis_service.port, db=redis_service.db)
    assert (redis_host, redis_port) == (redis_service.host, redis_service.port)
    assert client.set("k", WORKER)
    assert client.get("k") == WORKER.encode()
"""


#: warnings are errors in the probe, as in a strict project: dockwork's fixtures and servers
#: must not warn (deprecated fixtures, processes dropped while running)
WARNINGS = ("-W", "error")


def run(tmp: Path, enabled: bool, *args: str) -> subprocess.CompletedProcess[str]:
    project = f"dwpdb{uuid.uuid4().hex[:8]}"
    files = {"migrate.py": MIGRATE, "conftest.py": CONFTEST, "test_probe.py": TESTS}
    probe_project(tmp, project, files, extra=f"pytest_databases = {str(enabled).lower()}\n")
    (tmp / "seen").mkdir(exist_ok=True)
    return subprocess.run(
        # pytest 9 deprecates session fixtures defined as a plugin object's methods
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WARNINGS, *args],
        cwd=tmp,
        # every plugin loaded, pytest-databases' first, as in an adopter's run
        env={**env_without_services(), "PYTEST_ADDOPTS": "", "DOCKWORK_TEST_BACKEND": "embedded"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def pytest_databases_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=pytest_databases"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.split()


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_the_suite_runs_on_dockwork_servers_unchanged(
    tmp_path: Path, workers: tuple[str, ...]
) -> None:
    before = set(pytest_databases_containers())
    result = run(tmp_path, True, *workers)  # noqa: FBT003
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "6 passed" in out, out
    seen = [p.name.split("-", 1) for p in (tmp_path / "seen").iterdir()]
    assert len(dict(seen)) == len(seen), f"one database per process: {seen}"
    assert len({name for _, name in seen}) == len(seen), f"never shared: {seen}"
    assert all(name.startswith("dw_") for _, name in seen), seen
    assert set(pytest_databases_containers()) <= before, "no pytest-databases container"
