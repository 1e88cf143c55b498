"""Which backend provides a run's test servers (DESIGN.md, "Contracts"):

1. dockwork's own settings name servers (``DOCKWORK_TEST_DATABASE_URL`` /
   ``DOCKWORK_TEST_REDIS_URL``) → use them (:class:`ExternalBackend`);
2. reused servers from an earlier run still answer → use them (no engine round trip);
3. a Docker engine answers → labelled containers on free ports (:class:`DockerBackend`).

A project asks only for the servers it uses (``test_services``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dockwork import engine
from dockwork.errors import ProvisionError
from dockwork.testservers.containers import postgres_spec, redis_spec
from dockwork.testservers.external import SETTINGS, ExternalBackend

if TYPE_CHECKING:
    from dockwork.config import Config
    from dockwork.testservers.base import Backend, Servers
    from dockwork.testservers.containers import ContainerSpec
    from dockwork.testservers.engine_api import Engine
    from dockwork.testservers.ownership import Owner

WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, compared against


def specs(config: Config) -> list[ContainerSpec]:
    """The containers this project's tests need, from its configuration."""
    made = {
        "postgres": lambda: postgres_spec(config.postgres_image, config.postgres_init),
        "redis": lambda: redis_spec(config.redis_image),
    }
    return [made[kind]() for kind in config.test_services]


def _external(config: Config) -> ExternalBackend | None:
    given = {"postgres": config.test_database_url, "redis": config.test_redis_url}
    if not any(given.values()):
        return None
    missing = [kind for kind in config.test_services if not given[kind]]
    if missing:
        names = ", ".join(SETTINGS[k] for k in missing)
        raise ProvisionError(
            f"dockwork's test-server settings name some servers but not {names}, which this "
            f"project's tests use (test_services = {list(config.test_services)}). Set {names} "
            "as well, or unset the others to let dockwork start every server."
        )
    wanted = set(config.test_services)
    return ExternalBackend(
        config.test_database_url if "postgres" in wanted else None,
        config.test_redis_url if "redis" in wanted else None,
        timeout=config.service_timeout,
    )


def addresses(config: Config, docker_host: str | None, remote: str | None) -> tuple[str, str]:
    """Where containers publish their ports, and where this process reaches them, for an
    engine at ``docker_host`` (``remote``: its host, when that is another machine)."""
    bind = config.test_bind
    if remote and (bind.startswith("127.") or bind in {"localhost", "::1"}):
        raise ProvisionError(
            f"the Docker engine at {docker_host} runs on another machine ({remote}), so test "
            f"containers published on its loopback ({bind}) cannot be reached from here. Set "
            "DOCKWORK_TEST_BIND=0.0.0.0 to publish them on that machine's interfaces (they "
            "use random passwords), or set DOCKWORK_TEST_DATABASE_URL / "
            "DOCKWORK_TEST_REDIS_URL to servers you run."
        )
    if bind in WILDCARDS:
        return bind, remote or "127.0.0.1"
    return bind, bind


def discover(config: Config, *, owner: Owner | None = None) -> Backend:
    """Pick the backend by the contract's order; explain what to do when none fits."""
    external = _external(config)
    if external is not None:
        return external
    from dockwork.testservers import reuse_cache  # noqa: PLC0415
    from dockwork.testservers.docker import DockerBackend, connect  # noqa: PLC0415

    needed = specs(config)
    if not needed:
        raise ProvisionError(
            "this project's tests use no servers (test_services is empty), yet a test asked "
            'for one. Add "postgres" or "redis" to test_services in [tool.dockwork].'
        )
    docker_host = os.environ.get("DOCKER_HOST")

    def backend(found: Engine | None = None) -> DockerBackend:
        bind, host = addresses(config, docker_host, engine.remote_host(docker_host))
        return DockerBackend(
            config.project_name,
            needed,
            reuse=config.reuse,
            service_timeout=config.service_timeout,
            bind=bind,
            host=host,
            owner=owner,
            engine=found,
        )

    found, reason = connect()
    if config.reuse and found is not None:
        # warm path: the reused containers are still where they were left (one call each)
        cached = reuse_cache.find(backend().reuse_key(), found)
        if cached is not None:
            return cached
    if found is not None:
        return backend(found)  # the engine answered: now, is it where we can reach?
    where = f" at {docker_host}" if docker_host else ""
    raise ProvisionError(
        f"no test servers: no Docker engine answers{where} ({reason}) and dockwork's settings name "
        "no servers. Start Docker (or point DOCKER_HOST at an engine), or set "
        "DOCKWORK_TEST_DATABASE_URL / DOCKWORK_TEST_REDIS_URL to a PostgreSQL and a Redis you "
        "run for tests (never your app's own)."
    )


def release(servers: Servers, *, wait: bool = True) -> None:
    """Remove what a run's backend started, from any process of the run (``wait=False``:
    without holding this process for it, see :func:`.docker.release`)."""
    if servers.backend == "docker" and servers.handles:
        from dockwork.testservers import docker  # noqa: PLC0415

        docker.release(servers.handles, wait=wait)


def renew(servers: Servers) -> None:
    """Renew the heartbeat of a live run's servers (see :mod:`.ownership`)."""
    if servers.backend == "docker" and servers.handles:
        from dockwork.testservers import docker  # noqa: PLC0415

        found, _ = docker.connect(timeout=10)
        if found is not None:
            docker.beat(found, servers.handles)


def choice(config: Config) -> str:
    """Which servers a run will use, for headers: said without starting or pinging anything."""
    external = _external(config)
    if external is not None:
        from dockwork import urls  # noqa: PLC0415

        named = [urls.mask(u) for u in (external.database_url, external.redis_url) if u]
        return f"external ({', '.join(named)})"
    where = engine.describe_host()
    reused = ", reused across runs" if config.reuse else ""
    return f"docker containers on {where}{reused}, started when a test first needs them"


__all__ = ["choice", "discover", "release", "renew", "specs"]
