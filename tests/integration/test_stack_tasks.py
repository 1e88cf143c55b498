"""The stack tasks on a tiny compose project of this test's own (real engine, real Compose):
ports checked before anything starts, the right service blamed, signals reaching Compose,
.env only in development, and a doctor that never hangs or crashes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import default_signals, needs_docker, redis_image

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

pytestmark = pytest.mark.docker

COMPOSE = """
services:
  app:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server", "--requirepass", "${APP_SECRET:?set APP_SECRET}"]
    ports:
      - "127.0.0.1:${APP_PORT:-0}:6379"
    healthcheck:
      test: ["CMD", "sh", "-c", "${HEALTH:-true}"]
      interval: 1s
      retries: 600
    depends_on:
      migrate:
        condition: service_completed_successfully
  db:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server"]
  migrate:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["true"]
"""

OVERRIDE = """
services:
  app:
    environment:
      MODE: dev
"""

#: app's container is created, then its start fails (an address this machine lacks)
BROKEN_START = """
services:
  app:
    ports: !override
      - "192.0.2.123:0:6379"
  worker:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server"]
    depends_on:
      app:
        condition: service_healthy
"""

#: app's container cannot even be created (a mount source that does not exist)
BROKEN_CREATE = """
services:
  app:
    volumes:
      - type: bind
        source: /nonexistent/dockwork-probe
        target: /probe
        bind:
          create_host_path: false
  worker:
    image: ${REDIS_IMAGE:-redis:7}
    command: ["redis-server"]
    depends_on:
      app:
        condition: service_healthy
"""


class Tiny:
    """A compose project in a temp dir, driven with `inv` as a user would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = root.name
        self.env = {
            **os.environ,
            "DOCKWORK_PROJECT_NAME": self.name,
            "REDIS_IMAGE": redis_image(),
            "DOCKWORK_WAIT_TIMEOUT": "120",
        }

    def inv(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=default_signals,  # noqa: PLW1509 - signalled as CI would
        )

    def containers(self) -> list[str]:
        out = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.name}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()


@contextlib.contextmanager
def tiny_project(
    base: Path,
    prefix: str,
    files: Sequence[str] = ("compose.yaml",),
    cleanup_env: Mapping[str, str] | None = None,
) -> Iterator[Tiny]:
    """A compose project of its own (``<prefix><hex>``) with dockwork's tasks and the
    compose ``files`` the test writes; taken down afterwards with its volumes and the images
    Compose built for it (``--rmi local``: named after the project, none other).
    ``cleanup_env``: what the files need to be read then (a required variable)."""
    needs_docker()
    root = base / f"{prefix}{uuid.uuid4().hex[:8]}"
    root.mkdir()
    listed = ", ".join(f'"{f}"' for f in files)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{prefix}"\nversion = "0"\n\n[tool.dockwork]\n'
        f"compose_files = [{listed}]\n"
    )
    (root / "tasks.py").write_text("from dockwork.tasks import namespace\n\nns = namespace()\n")
    t = Tiny(root)
    t.env["PYTHON_IMAGE"] = os.environ.get("PYTHON_IMAGE") or "python:3.12-slim"
    try:
        yield t
    finally:
        down = ["down", "--volumes", "--remove-orphans", "--rmi", "local", "-t", "0"]
        subprocess.run(
            ["docker", "compose", "-p", t.name, *down],
            cwd=root,
            env={**t.env, **(cleanup_env or {})},
            capture_output=True,
            check=False,
        )


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Tiny]:
    files = ("compose.yaml", "compose.override.yaml")
    with tiny_project(tmp_path, "tiny", files, cleanup_env={"APP_SECRET": "x"}) as t:
        (t.root / "compose.yaml").write_text(textwrap.dedent(COMPOSE))
        (t.root / "compose.override.yaml").write_text(textwrap.dedent(OVERRIDE))
        (t.root / ".env.example").write_text("APP_SECRET=dev-only\n")
        yield t


def test_env_file_only_in_development_and_private(tiny: Tiny) -> None:
    prod = tiny.inv("up", DOCKWORK_COMPOSE_FILES="compose.yaml")
    output = prod.stdout + prod.stderr
    assert prod.returncode != 0
    assert "required variable APP_SECRET is missing a value" in output, "Compose's own message"
    assert "dockwork: APP_SECRET has no value" in output
    assert "never fills in development values" in output
    assert "failed with exit code" not in output, "Compose's line and dockwork's, no raw dump"
    assert not (tiny.root / ".env").exists(), "no development credentials on a production run"
    assert tiny.containers() == [], "nothing was started"

    dev = tiny.inv("up")
    assert dev.returncode == 0, dev.stdout + dev.stderr
    env_file = tiny.root / ".env"
    assert env_file.read_text() == "APP_SECRET=dev-only\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "created .env from .env.example" in dev.stderr


def test_a_taken_port_fails_before_anything_starts(tiny: Tiny) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = tiny.inv("up", APP_PORT=str(port))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"port {port} (app) is in use on 127.0.0.1 by another program; set APP_PORT" in output
    assert "Nothing was started" in output
    assert "Traceback" not in output
    assert tiny.containers() == []


def test_a_port_another_stack_publishes_is_named_with_its_container(tiny: Tiny) -> None:
    """Two checkouts on one machine: the port is held by the other's container, which the
    message names (with its Compose project) rather than 'another program'."""
    other = f"{tiny.name}-other"
    run = ["docker", "run", "-d", "--name", f"{other}-db-1", "-p", "127.0.0.1:0:6379"]
    labels = ["--label", f"com.docker.compose.project={other}"]
    subprocess.run([*run, *labels, redis_image()], check=True, capture_output=True)
    try:
        published = subprocess.run(
            ["docker", "port", f"{other}-db-1", "6379/tcp"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        port = published.split()[0].rpartition(":")[2]
        result = tiny.inv("up", APP_PORT=port)
    finally:
        rm = ["docker", "rm", "-f", "-v", f"{other}-db-1"]
        subprocess.run(rm, check=False, capture_output=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    held = f"by container {other}-db-1 of Compose project {other}; set APP_PORT"
    assert f"port {port} (app) is in use on 127.0.0.1 {held}" in output, output
    assert "or stop it." in output, output
    assert tiny.containers() == []


@pytest.mark.parametrize("broken", [BROKEN_START, BROKEN_CREATE], ids=["start", "create"])
def test_the_service_that_failed_is_blamed_not_its_dependents(tiny: Tiny, broken: str) -> None:
    (tiny.root / "broken.yaml").write_text(textwrap.dedent(broken))
    files = "compose.yaml compose.override.yaml broken.yaml"
    result = tiny.inv("up", DOCKWORK_COMPOSE_FILES=files, DOCKWORK_WAIT_TIMEOUT="30")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "failing: app." in output, output
    assert "worker" not in output.split("failing:")[1].split(".")[0], "worker only waited"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _compose_child(proc: subprocess.Popen[str], deadline: float = 60) -> int:
    """The pid of the `docker compose up` that `inv` is running."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for child in _children(proc.pid):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"compose" in cmdline and b"up" in cmdline:
                time.sleep(1)  # let Compose get to waiting
                return child
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.1)
    pytest.fail("inv never started docker compose up")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_signals_reach_compose_and_set_the_exit_code(tiny: Tiny, signum: int, code: int) -> None:
    # app never becomes healthy: `inv up` waits until it is signalled
    proc = tiny.popen("up", HEALTH="false")
    try:
        child = _compose_child(proc)
        t0 = time.monotonic()
        proc.send_signal(signum)  # to inv alone, as CI does: not to its process group
        output = proc.communicate(timeout=60)[0]
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, output
    assert not Path(f"/proc/{child}").exists(), "docker compose got the signal and ended"
    if signum != signal.SIGINT:  # a Ctrl-C in a terminal speaks for itself
        assert f"dockwork: stopped by {signal.Signals(signum).name} while `docker compose" in output
        assert "`inv down` stops it" in output
    assert took < 30, "inv did not wait out the health deadline"
    assert "Traceback" not in output


def test_doctor_with_a_hung_engine_reports_instead_of_hanging(tiny: Tiny, tmp_path: Path) -> None:
    sock_path = str(tmp_path / "hung.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:  # accepts and never answers: a hung engine
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        t0 = time.monotonic()
        result = tiny.inv("doctor", DOCKER_HOST=f"unix://{sock_path}", DOCKWORK_ENGINE_TIMEOUT="2")
        took = time.monotonic() - t0
    finally:
        server.close()
        for s in held:
            s.close()
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "✘ engine" in output
    assert "timed out" in output
    assert "Traceback" not in output
    assert took < 60
