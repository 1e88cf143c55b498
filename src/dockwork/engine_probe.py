"""The Docker engine: the CLI, the engine and Compose v2, asked by the tasks and the doctor.

:func:`probe` never raises: each part of the answer says what was found or why not.
:func:`check_engine` turns the first problem into one clear :class:`EngineError`.
Compose is asked only when a ``docker compose`` command has failed
(:func:`compose_problem`): a task whose Compose works pays for no extra process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dockwork.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Sequence

INSTALL_HINT = (
    "Install Docker (Docker Desktop, or Docker Engine with the Compose plugin: "
    "https://docs.docker.com/engine/install/) and retry."
)
START_HINT = (
    "Start Docker (Docker Desktop, `sudo systemctl start docker`, or your Podman "
    "socket), or point DOCKER_HOST at a running engine"
)
COMPOSE_HINT = "Install the Compose plugin (https://docs.docker.com/compose/install/)"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", ""})
#: the timeout :func:`check_engine` was last given: :func:`compose_problem` asks within it
_TIMEOUT = [20.0]


@dataclass(frozen=True, slots=True)
class Probe:
    """What answered: the CLI, the engine (``server``), Compose; and why not, per part."""

    docker: str | None
    host: str
    server: dict[str, Any] = field(default_factory=dict)
    engine_error: str = ""
    compose_version: str = ""
    compose_error: str = ""

    @property
    def engine_ok(self) -> bool:
        """The engine answered."""
        return bool(self.server)

    @property
    def compose_ok(self) -> bool:
        """``docker compose`` is v2 or later."""
        head = self.compose_version.split(".", 1)[0]
        return head.isdigit() and int(head) >= 2  # noqa: PLR2004

    @property
    def kind(self) -> str:
        """Docker Engine, Podman, … as the engine describes itself."""
        platform = (self.server.get("Platform") or {}).get("Name", "")
        names = " ".join(str(c.get("Name", "")) for c in self.server.get("Components") or [])
        if "podman" in f"{platform} {names}".lower():
            return "Podman"
        return platform or "Docker Engine"

    @property
    def version(self) -> str:
        """The engine's version."""
        return str(self.server.get("Version", "?"))


def docker_host() -> str | None:
    """``DOCKER_HOST`` (Docker's own variable, not a dockwork setting): the one place that
    reads it."""
    return os.environ.get("DOCKER_HOST") or None


def describe_host(environ: dict[str, str] | None = None) -> str:
    """Where the CLI connects: DOCKER_HOST, DOCKER_CONTEXT, or the current context."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return f"DOCKER_HOST={env['DOCKER_HOST']}"
    if env.get("DOCKER_CONTEXT"):
        return f"context {env['DOCKER_CONTEXT']}"
    return "the default socket (or the current docker context)"


def is_local_address(host: str) -> bool:
    """True when ``host`` is an address of this machine (it can bind a socket to it)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, _, _, _, address in infos:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address[0], 0))
            except OSError:
                continue
            return True
    return False


def remote_host(docker_host: str | None) -> str | None:
    """The engine's host name when DOCKER_HOST names another machine (tcp://, ssh://); an
    address of this machine (its own LAN address, say) is not another machine."""
    if not docker_host:
        return None
    parts = urlsplit(docker_host)
    if parts.scheme not in {"tcp", "ssh", "http", "https"}:
        return None
    host = parts.hostname or ""
    if host in LOOPBACK or host.startswith("127.") or is_local_address(host):
        return None
    return host


def remote_engine() -> str | None:
    """:func:`remote_host` of this process's ``DOCKER_HOST``: the other machine the engine
    runs on, whose published ports are not this one's."""
    return remote_host(os.environ.get("DOCKER_HOST"))


def probe(timeout: float = 20.0, *, compose: bool = True) -> Probe:
    """Ask the CLI, the engine and (unless told not to) Compose; never raises, each part
    says why it failed."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - off the import path

    from dockwork import runner  # noqa: PLC0415

    docker = shutil.which("docker")
    host = describe_host()
    if docker is None:
        return Probe(None, host, engine_error="`docker` was not found on PATH")
    server: dict[str, Any] = {}
    error = ""
    asking = ["docker", "version", "--format", "{{json .}}"]
    if compose:
        # two independent CLI calls: asked at once, answered in the time of the slower
        with ThreadPoolExecutor(max_workers=2) as pool:
            asked = pool.submit(runner.run, asking, check=False, timeout=timeout)
            short, compose_error = _compose_version(timeout)
            result = asked.result()
    else:
        result = runner.run(asking, check=False, timeout=timeout)
        short, compose_error = "", "not asked"
    try:
        version = json.loads(result.stdout) if result.stdout.strip() else {}
    except json.JSONDecodeError:
        version = {}
    if result.ok and isinstance(version, dict) and version.get("Server"):
        server = dict(version["Server"])
    else:
        lines = (result.stderr or result.stdout).strip().splitlines()
        error = lines[-1] if lines else "no answer"
    return Probe(docker, host, server, error, short, compose_error)


def _compose_version(timeout: float) -> tuple[str, str]:
    """``docker compose version --short`` without its ``v``, or "" and why not."""
    from dockwork import runner  # noqa: PLC0415

    asked = runner.run(["docker", "compose", "version", "--short"], check=False, timeout=timeout)
    short = asked.stdout.strip().lstrip("v")
    if asked.ok and short:
        return short, ""
    return "", asked.stderr.strip() or "not found"


def compose_problem(argv: Sequence[str], timeout: float | None = None) -> EngineError | None:
    """After ``argv`` failed: when it was a ``docker compose`` command and Compose itself is
    missing (or older than v2), the error naming what to install instead of the CLI's
    "'compose' is not a docker command"; else None. Asked only after a failure, so a
    working Compose costs each task no extra process. ``timeout``: by default the one the
    engine check was given (the ``engine_timeout`` setting)."""
    if list(argv[:2]) != ["docker", "compose"] or list(argv[2:3]) == ["version"]:
        return None
    short, _ = _compose_version(_TIMEOUT[0] if timeout is None else timeout)
    if Probe(shutil.which("docker"), describe_host(), compose_version=short).compose_ok:
        return None
    shown = f" (found {short!r})" if short else ""
    return EngineError(
        f"Docker Compose v2 (`docker compose`) is not available{shown}. {COMPOSE_HINT} and "
        "retry; the old `docker-compose` v1 is not supported."
    )


def check_engine(timeout: float = 20.0) -> Probe:
    """Fail with one message naming what to install or start, else describe the engine.

    Compose is not asked here (one process fewer per task): a ``docker compose`` command
    that fails is followed by :func:`compose_problem`, which names what to install."""
    _TIMEOUT[0] = timeout
    found = probe(timeout, compose=False)
    if found.docker is None:
        raise EngineError(f"`docker` was not found on PATH. {INSTALL_HINT}")
    if not found.engine_ok:
        raise EngineError(
            f"the docker CLI is installed but no Docker engine answers at {found.host} "
            f"({found.engine_error}). {START_HINT}, then retry."
        )
    return found


__all__ = [
    "Probe",
    "check_engine",
    "compose_problem",
    "describe_host",
    "is_local_address",
    "probe",
    "remote_engine",
    "remote_host",
]
