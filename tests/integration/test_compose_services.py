"""Any service of the project's compose files is a test server: its own container from that
service's image, environment and healthcheck, labelled and owned like the others, reached
through `dockwork_services` and `test_env`, shared by the xdist workers, gone after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.helpers import docker_backend, dockwork_containers, env_without_services, needs_docker

if TYPE_CHECKING:
    from pathlib import Path

PYPROJECT = """
[project]
name = "svcprobe"
version = "0"

[tool.dockwork]
project_name = "{project}"
compose_files = ["compose.yaml"]
test_services = {services}

[tool.dockwork.test_env]
WEB_URL = "{{web.url_8000}}"
PLAIN_PORT = "{{plain.port}}"
"""
# `web` has a healthcheck (interval 30 s: dockwork's containers check every second); `plain`
# has none and listens only after a while (a published port alone is not readiness); the
# greeting comes through Compose's interpolation of the service's environment
COMPOSE = """
services:
  web:
    image: ${PYTHON_IMAGE:-python:3.12-slim}
    command:
      - sh
      - -c
      - >-
        mkdir -p /tmp/www && echo "$$GREETING" > /tmp/www/greeting && cd /tmp/www &&
        exec python3 -m http.server 8000
    environment:
      GREETING: ${PROBE_GREETING:-hello from compose}
    ports: ["8000"]
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/greeting')"]
      interval: 30s
      retries: 30
  plain:
    image: ${PYTHON_IMAGE:-python:3.12-slim}
    command: ["sh", "-c", "sleep 2 && exec python3 -m http.server 9000"]
    expose: ["9000"]
  unused:
    image: does-not-exist.invalid/never-pulled
"""
TESTS = """
import json, os, subprocess, urllib.request
from pathlib import Path

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.mark.parametrize("n", range(4))
def test_the_services_answer(dockwork_services, n):
    web, plain = dockwork_services["web"], dockwork_services["plain"]
    assert set(web.ports) == {8000} and set(plain.ports) == {9000}
    with urllib.request.urlopen(web.url(8000) + "/greeting", timeout=5) as answer:
        assert answer.read().decode().strip() == "hello from compose"
    # no retry: dockwork waited until the server behind the published port answered
    with urllib.request.urlopen(plain.url(9000), timeout=5) as answer:
        assert answer.status == 200
    assert os.environ["WEB_URL"] == web.url(8000)
    assert os.environ["PLAIN_PORT"] == str(plain.ports[9000])
    project = os.environ["PROBE_PROJECT"]
    found = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=dev.dockwork.project={project}",
         "--filter", "label=dev.dockwork.service=web"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    labels = json.loads(subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Labels}}", *found],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[0])
    Path("seen", f"{WORKER}-{n}").write_text(
        json.dumps({"web": web.ports[8000], "plain": plain.ports[9000], "containers": found,
                    "labels": labels})
    )
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    needs_docker()
    return make_probe(tmp_path, ["web", "plain"])


def make_probe(where: Path, services: list[str]) -> Path:
    project = f"dwsvc{uuid.uuid4().hex[:8]}"
    (where / "pyproject.toml").write_text(
        PYPROJECT.format(project=project, services=json.dumps(services))
    )
    (where / "compose.yaml").write_text(COMPOSE)
    (where / "test_probe.py").write_text(textwrap.dedent(TESTS))
    (where / "seen").mkdir()
    return where


def project_of(probe: Path) -> str:
    return probe.joinpath("pyproject.toml").read_text().split('project_name = "')[1].split('"')[0]


def pytest_in(where: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=where,
        env={
            **env_without_services(),
            "PYTHONPATH": str(where),
            "PROBE_PROJECT": project_of(where),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def gone(project: str, timeout: float = 30) -> list[str]:
    """The project's containers, once they are gone (the run removes them detached)."""
    deadline = time.monotonic() + timeout
    while (left := dockwork_containers(project)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_a_compose_service_is_a_test_server(probe: Path, workers: tuple[str, ...]) -> None:
    result = pytest_in(probe, *workers)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "4 passed" in out, out
    seen = [json.loads(p.read_text()) for p in (probe / "seen").iterdir()]
    assert len(seen) == 4, seen
    # one container per service for the whole run, shared by every process
    assert len({s["web"] for s in seen}) == 1, seen
    assert len({s["plain"] for s in seen}) == 1, seen
    assert {len(s["containers"]) for s in seen} == {1}, seen
    if workers:
        assert {p.name.split("-")[0] for p in (probe / "seen").iterdir()} == {"gw0", "gw1"}
    # labelled and owned like the PostgreSQL and Redis containers
    labels = seen[0]["labels"]
    assert labels["dev.dockwork.project"] == project_of(probe)
    assert labels["dev.dockwork.role"] == "test-server"
    assert labels["dev.dockwork.service"] == "web"
    assert labels["dev.dockwork.reuse"] == "0"
    assert labels["dev.dockwork.run"]
    assert labels["dev.dockwork.owner.pid"]
    assert gone(project_of(probe)) == []


def test_the_embedded_backend_refuses_a_compose_service(probe: Path) -> None:
    result = pytest_in(probe, DOCKWORK_TEST_BACKEND="embedded")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "cannot run the compose service(s) 'web', 'plain'" in out, out
    assert "Use the Docker backend" in out, out
    assert "Traceback" not in out, out
    assert dockwork_containers(project_of(probe)) == []


def test_servers_the_user_names_leave_the_compose_services_to_docker(tmp_path: Path) -> None:
    needs_docker()
    probe = make_probe(tmp_path, ["redis", "web", "plain"])
    theirs = docker_backend(f"dwsvcext{uuid.uuid4().hex[:6]}", kinds=("redis",))
    servers = theirs.start()
    try:
        assert servers.redis_url
        result = pytest_in(probe, "-v", "-n", "2", DOCKWORK_TEST_REDIS_URL=servers.redis_url)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "test servers: external (redis://" in out, out
        assert "the compose services web, plain as Docker containers" in out, out
        seen = [json.loads(p.read_text()) for p in (probe / "seen").iterdir()]
        assert {len(s["containers"]) for s in seen} == {1}, seen
        assert gone(project_of(probe)) == []
    finally:
        theirs.stop()
    assert os.environ.get("DOCKWORK_TEST_REDIS_URL") != servers.redis_url
