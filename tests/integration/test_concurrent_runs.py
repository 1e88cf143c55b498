"""Two runs of one project at the same moment on one engine (two CI jobs on one runner,
two terminals): each under xdist, each creating databases, tables, Redis keys and test
containers. Both pass and neither leaves anything behind.

This is what the `clones` session proves with two whole `nox -s tests` in two checkouts
(minutes); here the same property costs seconds: the runs share the project's name, so
everything that could collide (container labels, database names, Redis claims, the
template, ports) is shared ground. It replaces two runs of the reference app's suite at
once, per backend (40 s each): the app's suite itself runs in the `tests` and
`tests-embedded` sessions, and what two runs share is the same whatever the tests do.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest

from dockwork.testing.servers import embedded
from tests.helpers import (
    PROBE_TASKS,
    dockwork_containers,
    env_without_services,
    gone,
    needs_docker,
    probe_project,
)

if TYPE_CHECKING:
    from pathlib import Path

MIGRATE = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (run text, n int)")
"""
TESTS = """
import os, time, psycopg, pytest, redis

RUN = os.environ["TWIN"]

@pytest.mark.parametrize("n", range(6))
def test_own_database_and_redis(dockwork_database, dockwork_redis, n):
    with psycopg.connect(dockwork_database.libpq_url, autocommit=True) as conn:
        conn.execute("INSERT INTO items VALUES (%s, %s)", (RUN, n))
        runs = {r[0] for r in conn.execute("SELECT run FROM items")}
    assert runs == {RUN}, "only this run's rows"
    client = redis.Redis.from_url(dockwork_redis.url)
    client.set(f"k{n}", RUN)
    values = {client.get(k) for k in client.keys("k*")}
    assert values == {RUN.encode()}, "only this run's keys"
    time.sleep(0.2)
"""


@pytest.mark.parametrize(
    "backend", ["docker", pytest.param("embedded", marks=pytest.mark.embedded)]
)
def test_two_runs_of_one_project_at_once(tmp_path: Path, backend: str) -> None:
    """Each run under xdist; the embedded runs share the project's state directory and the
    template's cache (their data directories are the runs' own), the Docker ones its labels."""
    if backend == "docker":
        needs_docker()
    elif embedded.missing(("postgres", "redis")):
        pytest.skip("needs the embedded wheels")
    project = f"dwtwin{uuid.uuid4().hex[:8]}"
    runs = []
    for twin in ("a", "b"):
        root = probe_project(
            tmp_path / twin, project, {"migrate.py": MIGRATE, "test_probe.py": TESTS}
        )
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"],
                cwd=root,
                env={**env_without_services(), "TWIN": twin, "DOCKWORK_TEST_BACKEND": backend},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "6 passed" in output, output
    if backend == "docker":
        assert gone(project), f"left behind: {dockwork_containers(project)}"
    else:  # each run's servers are recorded in the project's state directory until stopped
        assert list(embedded.state_dir(project).glob("*.json")) == [], "servers left running"


@pytest.mark.parametrize("twins", [2])
def test_the_template_is_built_once_when_runs_race_for_it(tmp_path: Path, twins: int) -> None:
    """Runs that start together on a server they share (a kept one) migrate the template
    once: the others wait for it and clone it."""
    needs_docker()
    project = f"dwtwin{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "migrated"
    migrate = MIGRATE + f"\nopen({str(marker)!r}, 'a').write('x')\n"
    runs = []
    for twin in range(twins):
        files = {"migrate.py": migrate, "test_probe.py": TESTS, "tasks.py": PROBE_TASKS}
        root = probe_project(tmp_path / f"r{twin}", project, files)
        env = {
            **env_without_services(),
            "TWIN": str(twin),
            "DOCKWORK_TEST_BACKEND": "docker",
            "DOCKWORK_REUSE": "1",
        }
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output
        assert marker.read_text() == "x", "the template was migrated once"
    finally:
        stopped = subprocess.run(
            [sys.executable, "-m", "invoke", "test-servers.stop"],
            cwd=tmp_path / "r0",
            env={**env_without_services(), "DOCKWORK_TEST_BACKEND": "docker"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert gone(project), f"left behind: {dockwork_containers(project)}"
