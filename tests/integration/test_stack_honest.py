"""`inv up` / `inv dev` tell the truth on a tiny compose project of this test's own (real
engine, real Compose 2.x): a one-shot service that fails, even after the rest is healthy and
with nothing depending on it, fails the task; one that succeeds does not; and the URL
printed for the app is the app's own published port, never another's."""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest

from tests.integration.test_stack_tasks import Tiny, tiny_project

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
    with tiny_project(tmp_path, "honest") as t:
        yield t


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


#: an app built from a Dockerfile whose build fails, beside a service that needs no build
UNBUILDABLE = """
services:
  cache:
    image: ${REDIS_IMAGE:-redis:7}
  app:
    build:
      context: .
      args:
        PYTHON_IMAGE: ${PYTHON_IMAGE:-python:3.12-slim}
    command: ["python3", "-m", "http.server", "8000"]
    depends_on: [cache]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
"""


def test_a_failed_build_is_said_as_such_and_nothing_starts(project: Tiny) -> None:
    (project.root / "compose.yaml").write_text(UNBUILDABLE)
    (project.root / "Dockerfile").write_text(
        "ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN echo the build breaks here && exit 3\n"
    )
    pyproject = project.root / "pyproject.toml"
    settings = pyproject.read_text()
    cases = {
        "up, which builds what it does not find": (["up"], settings),
        "dev, which builds first": (["dev", "--no-follow"], settings),
        # the app's service migrates before the stack starts: `compose run` builds it
        "up, migrating first": (
            ["up"],
            settings + 'migrate_service = "app"\nmigrate_command = ["true"]\n',
        ),
    }
    for case, (task, toml) in cases.items():
        pyproject.write_text(toml)
        result = project.inv(*task)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"{case}: {output}"
        assert "the build breaks here" in output, f"{case}: the build's own output is shown"
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("dockwork: ")]
        assert lines, f"{case}: {output}"
        assert lines[-1].startswith("dockwork: building the image"), f"{case}: {output}"
        assert "did not become healthy" not in output, case
        assert "migrations failed" not in output, case
        assert "Traceback" not in output, case
        assert project.containers() == [], f"{case}: nothing was started, not even the cache"

    # built, but never healthy: that is not a build failure
    (project.root / "Dockerfile").write_text("ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\n")
    compose = (project.root / "compose.yaml").read_text()
    (project.root / "compose.yaml").write_text(
        compose.replace('test: ["CMD", "true"]', 'test: ["CMD", "false"]\n      retries: 1')
    )
    pyproject.write_text(settings)
    unhealthy = project.inv("up")
    assert unhealthy.returncode != 0, unhealthy.stdout + unhealthy.stderr
    assert "did not become healthy" in unhealthy.stderr, unhealthy.stderr
    assert "building the image" not in unhealthy.stderr, unhealthy.stderr


#: an app without a healthcheck that fails at its start (as one missing a setting does),
#: after the service it depends on is healthy; APP_MODE=serve serves HTTP on 8000 instead,
#: APP_MODE=silent runs without listening, APP_MODE=late dies after 8 s without listening
CRASHING = """
services:
  cache:
    image: ${REDIS_IMAGE:-redis:7}
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      retries: 60
  app:
    image: ${PYTHON_IMAGE:-python:3.12-slim}
    command:
      - python3
      - -c
      - |
        import http.server, os, sys, time
        time.sleep(0.2)
        mode = os.environ["APP_MODE"]
        if mode == "crash":
            sys.exit("RuntimeError: SECRET_KEY is not set")
        if mode == "serve":
            http.server.test(http.server.SimpleHTTPRequestHandler, port=8000, bind="0.0.0.0")
        time.sleep(8 if mode == "late" else 600)
        sys.exit("gave up at " + mode)
    environment:
      APP_MODE: ${APP_MODE:-crash}
    ports: ["127.0.0.1:0:8000"]
    depends_on:
      cache: {condition: service_healthy}
    restart: unless-stopped
"""


def test_an_app_without_healthcheck_that_crashes_at_start_fails_up(project: Tiny) -> None:
    (project.root / "compose.yaml").write_text(CRASHING)
    crashing = project.inv("up")
    output = crashing.stdout + crashing.stderr
    assert crashing.returncode == 1, output
    assert "the stack did not stay up: app stopped or restarted" in crashing.stderr, output
    assert "SECRET_KEY is not set" in output, "its last log lines are shown"
    assert "app →" not in output, "no URL for an app that is not up"
    assert "Traceback" not in output

    steady = project.inv("up", APP_MODE="serve")
    assert steady.returncode == 0, steady.stdout + steady.stderr
    assert "app → http://127.0.0.1:" in steady.stdout, steady.stdout


@pytest.mark.parametrize(
    ("mode", "timeout", "said"),
    [
        # the deadline counts from when up starts asking the app (after its first 3 s)
        ("silent", "6", "app did not answer on 127.0.0.1:"),
        # dies long after its first 3 s, well before the deadline, on any machine
        ("late", "60", "the stack did not stay up: app stopped before it answered on port 8000"),
    ],
)
def test_an_app_without_healthcheck_that_never_serves_fails_up(
    project: Tiny, mode: str, timeout: str, said: str
) -> None:
    """Running past its first seconds is not serving: the URL `up` prints must answer
    (Docker's proxy accepts on the published port even when nothing listens)."""
    # no restart policy: a long-running service (restart "no" would make it a one-shot)
    (project.root / "compose.yaml").write_text(
        CRASHING.replace("    restart: unless-stopped\n", "")
    )
    result = project.inv("up", APP_MODE=mode, DOCKWORK_WAIT_TIMEOUT=timeout)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert said in result.stderr, output
    assert "waiting for app to answer on port 8000" in output, output
    assert "app →" not in output, "no URL for an app that does not answer"
    assert "Traceback" not in output


#: an app whose healthcheck probes with a program its image lacks (the service's own logs
#: look fine), and a cache whose probe answers with the reason it fails
PROBES_FAIL = """
services:
  app:
    image: ${REDIS_IMAGE:-redis:7}
    healthcheck:
      test: ["CMD", "no-such-probe-here", "-f", "http://127.0.0.1:6379/"]
      interval: 1s
      retries: 1
  cache:
    image: ${REDIS_IMAGE:-redis:7}
    healthcheck:
      test: ["CMD-SHELL", "echo replica not in sync yet >&2; exit 3"]
      interval: 1s
      retries: 1
"""


def test_an_unhealthy_service_is_shown_with_what_its_healthcheck_answered(
    project: Tiny,
) -> None:
    (project.root / "compose.yaml").write_text(PROBES_FAIL)
    unhealthy = project.inv("up")
    output = unhealthy.stdout + unhealthy.stderr
    assert unhealthy.returncode != 0, output
    assert "did not become healthy" in unhealthy.stderr, output
    assert "Traceback" not in output
    probes = dict(re.findall(r"--- the last healthcheck of (\w+) ---\n(.*)", unhealthy.stderr))
    # which of the two fails first is the engine's doing: Compose stops waiting at the first
    assert probes, output
    if "app" in probes:
        assert "no-such-probe-here" in probes["app"], output
    if "cache" in probes:
        assert probes["cache"] == "exit 3: replica not in sync yet", output
    assert "what the healthcheck answered" in unhealthy.stderr, output
