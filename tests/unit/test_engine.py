"""Engine detection against real failure modes (no mocks of docker itself)."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest

from dockwork import runner
from dockwork.engine import check_engine
from dockwork.errors import EngineError

if TYPE_CHECKING:
    from pathlib import Path


def test_no_docker_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError, match="`docker` was not found on PATH") as excinfo:
        check_engine()
    assert excinfo.value.exit_code == 3


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_unreachable_engine_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sock = tmp_path / "nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    with pytest.raises(EngineError) as excinfo:
        check_engine()
    message = excinfo.value.message
    assert "no Docker engine answers" in message
    assert str(sock) in message
    assert "Start Docker" in message


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_compose_v2_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a docker config dir without the compose plugin, and no system plugin dirs reachable:
    # emulate by a `docker` wrapper that answers `version` but has no `compose`
    wrapper = tmp_path / "docker"
    real = shutil.which("docker")
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = compose ]; then\n'
        "  echo \"docker: 'compose' is not a docker command.\" >&2; exit 1\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    if not runner.run([str(real), "version"], check=False).ok:
        pytest.skip("needs a reachable engine to get past the engine check")
    with pytest.raises(EngineError, match="Docker Compose v2"):
        check_engine()
