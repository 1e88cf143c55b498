"""`inv up` / `inv dev` tell the truth on a tiny compose project of this test's own (real
engine, real Compose 2.x): a one-shot service that fails, even after the rest is healthy and
with nothing depending on it, fails the task; one that succeeds does not; and the URL
printed for the app is the app's own published port, never another's."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import time
import urllib.request
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.helpers import needs_docker
from tests.integration.test_stack_tasks import Tiny

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.docker

#: a healthy service, and a one-shot (restart "no", no healthcheck) nothing depends on,
#: which ends after SEED_DELAY seconds with SEED_EXIT
ONE_SHOT = """
services:
  app:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      retries: 60
  seed:
    image: ${REDIS_IMAGE:-redis:7}
    command:
      - sh
      - -c
      - sleep ${SEED_DELAY:-0}; echo seed says goodbye ${SEED_EXIT:-0} >&2; exit ${SEED_EXIT:-0}
    restart: "no"
"""

#: the app serves HTTP on 8000 and a Vite-like dev server on 3006 (as litestar-fullstack's
#: app container does): `ps` lists 3006 first; a separate `web` service publishes its own
SERVE = (
    "mkdir -p /srv/{name} && echo {name} > /srv/{name}/index.html && "
    "python3 -m http.server {port} --directory /srv/{name}"
)
URLS = f"""
services:
  app:
    image: ${{PYTHON_IMAGE:-python:3.12-slim}}
    command:
      - sh
      - -c
      - {SERVE.format(name="vite", port=3006)} &
        {SERVE.format(name="app", port=8000)}
    ports:
      - "127.0.0.1:0:8000"
      - "127.0.0.1:0:3006"
    healthcheck:
      test:
        - CMD
        - python3
        - -c
        - import urllib.request as u; [u.urlopen(f'http://127.0.0.1:{{p}}/') for p in (8000, 3006)]
      interval: 1s
      retries: 60
  web:
    image: ${{PYTHON_IMAGE:-python:3.12-slim}}
    command: ["sh", "-c", "{SERVE.format(name="web", port=5173)}"]
    ports:
      - "127.0.0.1:0:5173"
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5173/')"]
      interval: 1s
      retries: 60
"""

NO_APP_PORT = """
services:
  app:
    ports: !reset []
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Tiny]:
    needs_docker()
    root = tmp_path / f"honest{uuid.uuid4().hex[:8]}"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "honest"\nversion = "0"\n\n[tool.dockwork]\n'
        'compose_files = ["compose.yaml"]\n'
    )
    (root / "tasks.py").write_text("from dockwork.tasks import namespace\n\nns = namespace()\n")
    t = Tiny(root)
    t.env["PYTHON_IMAGE"] = os.environ.get("PYTHON_IMAGE") or "python:3.12-slim"
    yield t
    subprocess.run(
        ["docker", "compose", "-p", t.name, "down", "--volumes", "--remove-orphans", "-t", "0"],
        cwd=root,
        env=t.env,
        capture_output=True,
        check=False,
    )


def _state(t: Tiny, service: str) -> str:
    out = subprocess.run(
        [
            "docker",
            "compose",
            "-p",
            t.name,
            "ps",
            "-a",
            "--format",
            "{{.State}} {{.ExitCode}}",
            service,
        ],
        cwd=t.root,
        env=t.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize("task", [["up"], ["dev", "--no-follow", "--no-build"]])
def test_a_one_shot_failing_after_the_stack_is_healthy_fails_the_task(
    project: Tiny, task: list[str]
) -> None:
    (project.root / "compose.yaml").write_text(textwrap.dedent(ONE_SHOT))
    result = project.inv(*task, SEED_DELAY="6", SEED_EXIT="1")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "waiting for seed to finish" in output, "Compose had returned while seed still ran"
    assert "failing: seed. seed (one-shot) exited with code 1." in output, output
    assert "last 50 log lines of seed" in output
    assert "seed says goodbye 1" in output, "its own last log lines"
    assert "Traceback" not in output
    assert "app → http" not in output, "no URL for a stack that failed"


def test_a_one_shot_failing_at_once_is_named_with_its_exit_code(project: Tiny) -> None:
    (project.root / "compose.yaml").write_text(textwrap.dedent(ONE_SHOT))
    result = project.inv("up", SEED_EXIT="3")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "failing: seed. seed (one-shot) exited with code 3." in output, output
    assert "seed says goodbye 3" in output


@pytest.mark.parametrize("delay", ["0", "4"], ids=["at-once", "after-the-stack-is-healthy"])
def test_a_one_shot_exiting_0_passes_once_it_has_finished(project: Tiny, delay: str) -> None:
    (project.root / "compose.yaml").write_text(textwrap.dedent(ONE_SHOT))
    result = project.inv("up", SEED_DELAY=delay, SEED_EXIT="0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _state(project, "seed") == "exited 0", "inv up returned once seed had finished"
    assert _state(project, "app") == "running 0"


def _get(url: str, deadline: float = 20) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our http URL
                return str(response.read().decode().strip())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_the_url_printed_is_the_apps_own_http_port(project: Tiny) -> None:
    (project.root / "compose.yaml").write_text(URLS)
    result = project.inv("up")
    assert result.returncode == 0, result.stdout + result.stderr
    app = re.search(
        r"app → (http://127\.0\.0\.1:\d+) \(port 8000; it also publishes 3006\)", result.stdout
    )
    web = re.search(r"web → (http://127\.0\.0\.1:\d+) \(port 5173\)", result.stdout)
    assert app, result.stdout
    assert web, result.stdout
    assert _get(app.group(1)) == "app"
    assert _get(web.group(1)) == "web"
    assert "the URL is the first in its `ports:` (8000)" in result.stderr, "the pick is explained"

    (project.root / "no-port.yaml").write_text(textwrap.dedent(NO_APP_PORT))
    result = project.inv("up", DOCKWORK_COMPOSE_FILES="compose.yaml no-port.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no URL for the app: app publishes no port on this machine" in result.stdout
    assert "app → " not in result.stdout
    assert re.search(r"web → http://127\.0\.0\.1:\d+ \(port 5173\)", result.stdout)


#: the app is the migrate service, as `dockwork init` sets it for a project with no
#: migration service: nothing of the stack migrates as it starts. Its "migration" leaves a
#: mark in a volume the app mounts.
MIGRATED_BY_NOTHING = """
services:
  app:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server"]
    volumes: ["marks:/marks"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      retries: 60
volumes:
  marks:
"""


def test_up_migrates_when_no_service_of_the_stack_does(project: Tiny) -> None:
    (project.root / "compose.yaml").write_text(MIGRATED_BY_NOTHING)
    pyproject = project.root / "pyproject.toml"
    settings = pyproject.read_text() + 'migrate_service = "app"\n'
    pyproject.write_text(
        settings + 'migrate_command = ["sh", "-c", "echo head >> /marks/migrated"]\n'
    )
    result = project.inv("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "migrating in app" in result.stderr
    assert "sh -c 'echo head >> /marks/migrated'" in result.stdout, "the command is echoed"
    marks = subprocess.run(
        ["docker", "compose", "-p", project.name, "exec", "-T", "app", "cat", "/marks/migrated"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert marks.stdout.split() == ["head"], marks.stdout + marks.stderr

    # a migration that fails fails the task, with its exit code
    pyproject.write_text(settings + 'migrate_command = ["sh", "-c", "exit 3"]\n')
    failed = project.inv("up")
    assert failed.returncode == 3, failed.stdout + failed.stderr
