"""Where reused test servers were left, so a warm run finds them at once.

A file per reuse key under the user's cache directory holds the servers (URLs and
container ids). A warm run checks each container with one engine call (running, and
still publishing the port its URL names) and uses them: no container is created, no
client library imported. Anything else (file missing, container gone, ports changed after
an engine restart) falls back to the full path, which rewrites the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dockwork.config import cache_dir
from dockwork.testing.servers.base import Servers
from dockwork.testing.servers.engine_api import ApiError, Engine


def _path(key: str) -> Path:
    return cache_dir() / f"reuse-{key}.json"


def save(key: str, servers: Servers) -> None:
    """Remember where the reused servers answer (best effort: a cache, not state)."""
    path = _path(key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # the URLs carry passwords: readable by this user only, replaced atomically
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".reuse-")
        with os.fdopen(fd, "w") as out:
            out.write(servers.to_json())
        Path(tmp).replace(path)


class CachedBackend:
    """Reused servers found through the cache: nothing to start, nothing to stop."""

    name = "docker-reused"

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    def start(self) -> Servers:
        """The servers already answered when this backend was made."""
        return self.servers

    def stop(self) -> None:
        """Reused servers outlive the run."""


def _still_there(engine: Engine, cid: str, ports: list[int]) -> bool:
    """The container runs and publishes the ports the cached servers name."""
    try:
        state = engine.inspect(cid)
    except ApiError:
        return False
    if not (state.get("State") or {}).get("Running"):
        return False
    found = (state.get("NetworkSettings") or {}).get("Ports") or {}
    published = {str(b.get("HostPort")) for bindings in found.values() for b in bindings or []}
    return {str(port) for port in ports} <= published


def find(key: str, engine: Engine) -> CachedBackend | None:
    """A backend for the cached servers when they are all still there, else None."""
    path = _path(key)
    try:
        cached = Servers.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no usable entry
    for name, ports in cached.host_ports().items():
        if not _still_there(engine, cached.details.get(name, ""), ports):
            path.unlink(missing_ok=True)
            return None
    servers = Servers.of(
        CachedBackend.name, cached.urls(), services=cached.services, details=cached.details
    )
    return CachedBackend(servers)
