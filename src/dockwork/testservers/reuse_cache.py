"""Where reused test servers were left, so a warm run finds them without the engine.

A file per reuse key under the user's cache directory holds the URLs. A warm run probes
them (PostgreSQL must report the cluster name dockwork gives its test servers) and uses
them; anything else (file missing, server gone, ports changed after an engine restart)
falls back to asking the engine, which rewrites the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dockwork import urls
from dockwork.config import cache_dir
from dockwork.testservers import readiness
from dockwork.testservers.base import Servers

CLUSTER_NAME = "dockwork-test"


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


def _probe_postgres(url: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(urls.libpq(url), connect_timeout=2) as conn:
        row = conn.execute("SHOW cluster_name").fetchone()
    if row is None or row[0] != CLUSTER_NAME:
        raise ConnectionError(f"not a dockwork test server (cluster_name {row!r})")


def find(key: str) -> CachedBackend | None:
    """A backend for the cached servers when they all still answer, else None."""
    path = _path(key)
    try:
        cached = Servers.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no usable entry
    try:
        if cached.database_url:
            _probe_postgres(cached.database_url)
        if cached.redis_url:
            readiness.redis_probe(cached.redis_url, timeout=1)()
    except Exception:  # noqa: BLE001 - any failure: stale, ask the engine
        path.unlink(missing_ok=True)
        return None
    servers = Servers(
        CachedBackend.name, cached.database_url, cached.redis_url, details=cached.details
    )
    return CachedBackend(servers)
