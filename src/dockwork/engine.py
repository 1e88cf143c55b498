"""Engine detection: the docker CLI, a reachable engine and Compose v2, or one clear message."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dockwork import runner
from dockwork.errors import EngineError

INSTALL_HINT = (
    "Install Docker (Docker Desktop, or Docker Engine with the Compose plugin: "
    "https://docs.docker.com/engine/install/) and retry."
)
START_HINT = (
    "Start Docker (Docker Desktop, `sudo systemctl start docker`, or your Podman "
    "socket), or point DOCKER_HOST at a running engine"
)
COMPOSE_HINT = "Install the Compose plugin (https://docs.docker.com/compose/install/)"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What was found."""

    docker: str
    server_version: str
    compose_version: str
    host: str


def check_engine(timeout: float = 20.0) -> EngineInfo:
    """Fail with one message naming what to install or start, else describe the engine."""
    try:
        docker = runner.which("docker", hint=INSTALL_HINT)
    except runner.ProgramNotFoundError as exc:
        raise EngineError(exc.message) from exc
    host = os.environ.get("DOCKER_HOST", "") or "the default socket (or current docker context)"
    server = runner.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], check=False, timeout=timeout
    )
    if not server.ok or not server.stdout.strip():
        reason = (server.stderr or server.stdout).strip().splitlines()
        raise EngineError(
            f"the docker CLI is installed but no Docker engine answers at {host}"
            + (f" ({reason[-1]})" if reason else "")
            + f". {START_HINT}, then retry."
        )
    compose = runner.run(["docker", "compose", "version", "--short"], check=False, timeout=timeout)
    version = compose.stdout.strip().lstrip("v")
    if not compose.ok or not version or not version[0].isdigit() or int(version.split(".")[0]) < 2:  # noqa: PLR2004
        raise EngineError(
            "Docker Compose v2 (`docker compose`) is not available"
            + (f" (found {version!r})" if version else "")
            + f". {COMPOSE_HINT} and retry; the old `docker-compose` v1 is not supported."
        )
    return EngineInfo(docker, server.stdout.strip(), version, host)
