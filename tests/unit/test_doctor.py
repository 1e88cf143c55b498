"""`inv doctor` as a user runs it, against real failure modes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dockwork.doctor import FAIL, OK, Check, render

ROOT = Path(__file__).resolve().parents[2]
needs_docker = pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")


def doctor(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "doctor"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_docker
def test_stopped_engine_is_reported_and_blocks(tmp_path: Path) -> None:
    result = doctor(DOCKER_HOST=f"unix://{tmp_path}/missing.sock")
    assert result.returncode == 1
    assert "✘ engine" in result.stdout
    assert "missing.sock" in result.stdout
    assert "Start Docker" in result.stdout
    assert "block `inv dev`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@needs_docker
def test_a_port_taken_by_another_program_blocks() -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = doctor(APP_PORT=str(port), DOCKWORK_PROJECT_NAME="doctor-probe")
    assert result.returncode == 1, result.stdout
    assert f"✘ port {port} (app)" in result.stdout
    assert "APP_PORT" in result.stdout


def test_render_marks_and_fixes() -> None:
    text = render([Check("a", OK, "fine"), Check("b", FAIL, "broken", "do this")])
    assert "✔ a  fine" in text
    assert "✘ b  broken" in text
    assert "→ do this" in text
    assert text.endswith("1 problem(s) block `inv dev`: b")
