"""Where reused test servers were left, so a warm run finds them without the engine.

A file per reuse key under the user's cache directory holds the two URLs. A warm run
probes them (PostgreSQL must report the cluster name dockwork gives its test servers) and
uses them; anything else (file missing, server gone, ports changed after an engine
restart) falls back to asking the engine, which rewrites the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dockwork.services import Services, readiness

CLUSTER_NAME = "dockwork-test"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dockwork`` (default ``~/.cache/dockwork``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dockwork"


def _path(key: str) -> Path:
    return cache_dir() / f"reuse-{key}.json"


def save(key: str, services: Services) -> None:
    """Remember where the reused servers answer (best effort: a cache, not state)."""
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"database_url": services.database_url, "redis_url": services.redis_url})
        )
        tmp.replace(path)
    except OSError:
        pass


class CachedBackend:
    """Reused servers found through the cache: nothing to start, nothing to stop."""

    name = "docker-reused"

    def __init__(self, services: Services) -> None:
        self.services = services

    def start(self) -> Services:
        """The servers already answered when this backend was made."""
        return self.services

    def stop(self) -> None:
        """Reused servers outlive the run."""


def _probe_postgres(url: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(readiness.libpq_url(url), connect_timeout=2) as conn:
        row = conn.execute("SHOW cluster_name").fetchone()
    if row is None or row[0] != CLUSTER_NAME:
        raise ConnectionError(f"not a dockwork test server (cluster_name {row!r})")


def find(key: str) -> CachedBackend | None:
    """A backend for the cached servers when both still answer, else None."""
    path = _path(key)
    try:
        data = json.loads(path.read_text())
        services = Services(str(data["database_url"]), str(data["redis_url"]), "docker-reused")
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no usable entry
    try:
        _probe_postgres(services.database_url)
        readiness.redis_probe(services.redis_url, timeout=1)()
    except Exception:  # noqa: BLE001 - any failure: stale, ask the engine
        path.unlink(missing_ok=True)
        return None
    return CachedBackend(services)
