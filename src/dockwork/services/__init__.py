"""Service provisioning for tests: one interface, backends behind it.

Discovery order (DESIGN.md, "Contracts"):

1. ``DATABASE_URL`` and ``REDIS_URL`` given → use them (:class:`EnvBackend`);
2. a reachable Docker engine → labelled containers on free loopback ports
   (:class:`dockwork.services.docker.DockerBackend`);
3. (later) local server binaries.

Whichever backend answers, callers get the same :class:`Services`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from dockwork.errors import DockworkError

if TYPE_CHECKING:
    from collections.abc import Mapping


class ProvisionError(DockworkError):
    """Test services could not be provided."""


@dataclass(frozen=True, slots=True)
class Services:
    """URLs of a PostgreSQL server (an admin database on it) and a Redis server."""

    database_url: str
    redis_url: str
    backend: str
    details: Mapping[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """Starts services, hands out their URLs, and stops what it started."""

    name: str

    def start(self) -> Services:
        """Start (or find) the services and wait until each answers a real query."""
        ...

    def stop(self) -> None:
        """Remove everything this backend created; safe to call twice."""
        ...


class EnvBackend:
    """Services given by the environment: nothing to start or stop."""

    name = "env"

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url

    def start(self) -> Services:
        """Check both answer, then hand them out."""
        from dockwork.services import readiness  # noqa: PLC0415

        readiness.wait_all(
            {
                "PostgreSQL (DATABASE_URL)": readiness.postgres_probe(self.database_url),
                "Redis (REDIS_URL)": readiness.redis_probe(self.redis_url),
            },
            timeout=15,
        )
        return Services(self.database_url, self.redis_url, self.name)

    def stop(self) -> None:
        """Nothing to do: dockwork did not start these."""


def discover(
    project: str,
    *,
    environ: Mapping[str, str] | None = None,
    reuse: bool | None = None,
) -> Backend:
    """Pick the backend by the contract's order; explain what to do when none fits."""
    env = os.environ if environ is None else environ
    db, redis = env.get("DATABASE_URL"), env.get("REDIS_URL")
    if db and redis:
        return EnvBackend(db, redis)
    if db or redis:
        missing = "REDIS_URL" if db else "DATABASE_URL"
        given = "DATABASE_URL" if db else "REDIS_URL"
        raise ProvisionError(
            f"{given} is set but {missing} is not. Set both to use your own servers, or "
            "unset both to let dockwork start PostgreSQL and Redis containers."
        )
    from dockwork.services.docker import DockerBackend, connect  # noqa: PLC0415

    if reuse is None:
        reuse = env.get("DOCKWORK_REUSE", "").lower() in {"1", "true", "yes"}
    if reuse:
        # warm path: the reused servers answer where they were left; no engine round trip
        from dockwork.services import reuse_cache  # noqa: PLC0415

        cached = reuse_cache.find(DockerBackend(project, reuse=True, environ=env).reuse_key())
        if cached is not None:
            return cached
    client, reason = connect()
    if client is not None:
        return DockerBackend(project, reuse=reuse, environ=env, client=client)
    raise ProvisionError(
        f"no test services: DATABASE_URL/REDIS_URL are not set and no Docker engine answers "
        f"({reason}). Start Docker (or point DOCKER_HOST at an engine), or set DATABASE_URL "
        "and REDIS_URL to a PostgreSQL and a Redis you run yourself."
    )
