"""Test servers kept between runs (DOCKWORK_REUSE=1): safe when runs start at once, found
by the next run, listed and stopped by `inv test-servers.ls` / `inv test-servers.stop`
for both backends, and never another project's."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dockwork.testing.servers import embedded
from tests.helpers import dockwork_containers, env_without_services, needs_docker

if TYPE_CHECKING:
    from collections.abc import Iterator

PYPROJECT = """
[project]
name = "keptprobe"
version = "0"

[tool.dockwork]
project_name = "{project}"
test_services = ["postgres", "redis"]
"""
TESTS = """
import psycopg, redis

def test_servers(dockwork_servers):
    with psycopg.connect(dockwork_servers.database_url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert redis.Redis.from_url(dockwork_servers.redis_url, socket_timeout=10).ping()
    print("SERVERS", dockwork_servers.details)
"""
TASKS = "from dockwork.tasks import namespace\n\nns = namespace()\n"


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Path]:
    """A project of its own, with its tests and a tasks.py; its kept servers stopped after."""
    project = f"dwkept{uuid.uuid4().hex[:8]}"
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(project=project))
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "tasks.py").write_text(TASKS)
    yield tmp_path
    inv(tmp_path, "test-servers.stop")


def env(backend: str) -> dict[str, str]:
    found = {**env_without_services(), "DOCKWORK_TEST_BACKEND": backend, "DOCKWORK_REUSE": "1"}
    if backend == "embedded":
        found["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    return found


def pytest_run(where: Path, backend: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"],
        cwd=where,
        env=env(backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def inv(where: Path, *args: str, backend: str = "embedded") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=where,
        env=env(backend),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def project_of(probe: Path) -> str:
    return probe.joinpath("pyproject.toml").read_text().split('project_name = "')[1].split('"')[0]


def finished(run: subprocess.Popen[str]) -> str:
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 0, output
    assert "1 passed" in output, output
    return output


@pytest.mark.skipif(
    embedded.missing(("postgres", "redis")) is not None, reason="needs the embedded wheels"
)
def test_kept_embedded_servers_two_runs_at_once_then_listed_and_stopped(probe: Path) -> None:
    runs = [pytest_run(probe, "embedded") for _ in range(3)]
    outputs = [finished(run) for run in runs]
    pids = {
        line.split("'postgres_pid': '")[1].split("'")[0]
        for o in outputs
        for line in o.splitlines()
        if line.startswith("SERVERS")
    }
    assert len(pids) == 1, f"runs at once share one kept server, not several: {pids}"
    (pid,) = pids
    assert Path(f"/proc/{pid}").exists(), "kept between runs"

    listed = inv(probe, "test-servers.ls")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "embedded postgres" in listed.stdout
    assert "embedded redis" in listed.stdout
    assert "***" in listed.stdout, "passwords are masked"

    stopped = inv(probe, "test-servers.stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "2 kept test server(s) stopped" in stopped.stderr + stopped.stdout
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    project = project_of(probe)
    assert list(embedded.state_dir(project).glob("reuse-*.json")) == []
    again = inv(probe, "test-servers.ls")
    assert "no kept test servers of this project found" in again.stdout + again.stderr


def test_kept_containers_are_stopped_and_another_projects_are_not(
    probe: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    needs_docker()
    other = tmp_path_factory.mktemp("other")
    other_project = f"dwkept{uuid.uuid4().hex[:8]}"
    (other / "pyproject.toml").write_text(PYPROJECT.format(project=other_project))
    (other / "test_probe.py").write_text(textwrap.dedent(TESTS))
    (other / "tasks.py").write_text(TASKS)
    try:
        finished(pytest_run(probe, "docker"))
        finished(pytest_run(other, "docker"))
        project = project_of(probe)
        assert len(dockwork_containers(project)) == 2, "kept: postgres and redis"

        listed = inv(probe, "test-servers.ls", backend="docker")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert listed.stdout.count("docker ") == 2, listed.stdout
        assert other_project not in listed.stdout

        stopped = inv(probe, "test-servers.stop", backend="docker")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert dockwork_containers(project) == []
        assert len(dockwork_containers(other_project)) == 2, "another project's are kept"
    finally:
        inv(other, "test-servers.stop", backend="docker")
    assert dockwork_containers(other_project) == []


def test_stop_with_no_engine_still_stops_the_embedded_ones_and_says_so(probe: Path) -> None:
    result = inv(probe, "test-servers.stop")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no Docker engine answers" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
