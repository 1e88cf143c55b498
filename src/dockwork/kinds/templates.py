"""What one pytest process gets of the test servers, in the forms an app reads.

:class:`Database` and :class:`RedisDatabase` are the structured fixtures
(``dockwork_database``, ``dockwork_redis``): this process's own PostgreSQL database and
Redis logical database, as the app's URL, the libpq URL and the parts. ``test_env`` in
``[tool.dockwork]`` maps the variables the app reads to templates over them, e.g.::

    [tool.dockwork.test_env]
    POSTGRES_SERVER = "{postgres.host}"
    POSTGRES_PORT = "{postgres.port}"
    POSTGRES_PASSWORD = "{postgres.password}"
    DATABASE_URL = "{postgres.url}"
    REDIS_URL = "{redis.url}"

A compose service run as a test server (``test_services = ["postgres", "mailpit"]``) is a
:class:`Service` (``dockwork_services``): the run's one container, shared by every process.
Templates name it by its service name: ``{mailpit.host}``, ``{mailpit.port_8025}`` (the
published port of its container port 8025), ``{mailpit.url_8025}``
(``http://host:port``), and ``{mailpit.port}`` / ``{mailpit.url}`` when it has one port::

    SMTP_HOST = "{mailpit.host}"
    SMTP_PORT = "{mailpit.port_1025}"
    MAILPIT_API = "{mailpit.url_8025}"
"""

from __future__ import annotations

import dataclasses
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from dockwork import kinds, urls
from dockwork.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Database:
    """This process's own PostgreSQL database."""

    #: in the project's driver scheme (``database_scheme``): what the app's settings take
    url: str
    #: the same, as libpq (psycopg, psql, asyncpg.connect) understands it
    libpq_url: str
    host: str
    port: int
    user: str
    password: str
    #: the database's name
    database: str

    @classmethod
    def of(cls, admin_url: str, name: str, scheme: str) -> Database:
        """Database ``name`` on the server ``admin_url`` names."""
        url = urls.with_database(urls.libpq(admin_url), name)
        parts = urlsplit(url)
        return cls(
            url=urls.with_scheme(url, scheme),
            libpq_url=url,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=name,
        )


@dataclass(frozen=True, slots=True)
class RedisDatabase:
    """This process's own Redis logical database."""

    url: str
    host: str
    port: int
    password: str
    #: the logical database's index
    db: int

    @classmethod
    def of(cls, url: str) -> RedisDatabase:
        """The logical database ``url`` selects."""
        parts = urlsplit(url)
        path = parts.path.strip("/")
        return cls(
            url=url,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            password=unquote(parts.password or ""),
            db=int(path) if path.isdigit() else 0,
        )


@dataclass(frozen=True, slots=True)
class Service:
    """A compose service run as a test server: where this process reaches it."""

    name: str
    host: str
    #: container port → the published port on ``host``
    ports: Mapping[int, int]

    def url(self, port: int, scheme: str = "http") -> str:
        """``scheme://host:published`` for its container port ``port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.published(port)}"

    def published(self, port: int) -> int:
        """The published port of its container port ``port`` (an error names the ports)."""
        if port not in self.ports:
            known = ", ".join(map(str, self.ports)) or "none"
            raise ConfigError(
                f"the test server {self.name!r} has no container port {port} (its ports: "
                f"{known}; from `ports:` and `expose:` in the compose files)."
            )
        return self.ports[port]

    @classmethod
    def of(cls, name: str, where: Mapping[str, object]) -> Service:
        """From the run's record (``Servers.services``: JSON, ports keyed by strings)."""
        ports = where.get("ports")
        found = {int(c): int(h) for c, h in ports.items()} if isinstance(ports, dict) else {}
        return cls(name, str(where.get("host") or "127.0.0.1"), found)


#: what a template may read of a :class:`Service`
SERVICE_PARTS = re.compile(r"host|port|url|port_\d+|url_\d+")


class _ServiceParts:
    """A :class:`Service` as templates read it: ``host``, ``port_N``, ``url_N`` (``port``
    and ``url`` when it has one port)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def __getattr__(self, part: str) -> str:
        service = self._service
        if part == "host":
            return service.host
        what, _, number = part.partition("_")
        if not number:
            if len(service.ports) != 1:
                raise ConfigError(
                    f"`test_env` names {{{service.name}.{part}}}, but {service.name!r} has "
                    f"{len(service.ports)} ports ({', '.join(map(str, service.ports))}): "
                    f"name one, e.g. {{{service.name}.{part}_{next(iter(service.ports), 80)}}}."
                )
            number = str(next(iter(service.ports)))
        port = int(number)
        return service.url(port) if what == "url" else str(service.published(port))


#: the names a template may use, and the server kind each needs
ROOTS = {"postgres": (Database, "postgres"), "redis": (RedisDatabase, "redis")}


def _fields(template: str) -> Iterable[str]:
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            yield field


def check_templates(pairs: Sequence[tuple[str, str]], services: Sequence[str], source: str) -> None:
    """Every template names a known part of a server the project's tests use."""
    for variable, template in pairs:
        try:
            fields = list(_fields(template))
        except ValueError as exc:
            raise ConfigError(
                f"{source}: `test_env` {variable} = {template!r} is not a template ({exc}). "
                'Write parts in braces, e.g. "{postgres.host}"; a literal brace is doubled.'
            ) from None
        for field in fields:
            root, _, attr = field.partition(".")
            if root in kinds.services(services):
                if not SERVICE_PARTS.fullmatch(attr):
                    raise ConfigError(
                        f"{source}: `test_env` {variable} = {template!r} names {{{field}}}; "
                        f"of the compose service {root!r} dockwork gives {{{root}.host}}, "
                        f"{{{root}.port_<container port>}}, {{{root}.url_<container port>}} "
                        f"(and {{{root}.port}}, {{{root}.url}} when it has one port)."
                    )
                continue
            kind = ROOTS.get(root)
            names = [f.name for f in dataclasses.fields(kind[0])] if kind else []
            if kind is None or attr not in names:
                known = ", ".join(
                    [
                        f"{{{r}.{f.name}}}"
                        for r, (c, _) in ROOTS.items()
                        for f in dataclasses.fields(c)
                    ]
                    + [f"{{{name}.host}}, {{{name}.port_<N>}}" for name in kinds.services(services)]
                )
                raise ConfigError(
                    f"{source}: `test_env` {variable} = {template!r} names {{{field}}}, "
                    f"which dockwork does not provide. Known: {known}."
                )
            if kind[1] not in services:
                raise ConfigError(
                    f"{source}: `test_env` {variable} uses {{{field}}}, but test_services "
                    f"({list(services)}) has no {kind[1]!r}. Add it to test_services."
                )


def roots_used(pairs: Sequence[tuple[str, str]]) -> set[str]:
    """The test servers the templates read (kinds, compose services), by name."""
    return {field.partition(".")[0] for _, template in pairs for field in _fields(template)}


def kinds_used(pairs: Sequence[tuple[str, str]]) -> set[str]:
    """The server kinds the templates read."""
    return roots_used(pairs) & set(ROOTS)


def render(
    pairs: Sequence[tuple[str, str]],
    postgres: Database | None = None,
    redis: RedisDatabase | None = None,
    services: Mapping[str, Service] | None = None,
) -> dict[str, str]:
    """The variables, their templates filled in (a test server not given leaves its
    variables out)."""
    given: dict[str, object] = {
        k: v for k, v in (("postgres", postgres), ("redis", redis)) if v is not None
    }
    given |= {name: _ServiceParts(service) for name, service in (services or {}).items()}
    out = {}
    for variable, template in pairs:
        if {f.partition(".")[0] for f in _fields(template)} <= set(given):
            out[variable] = template.format_map(given)
    return out


__all__ = [
    "Database",
    "RedisDatabase",
    "Service",
    "check_templates",
    "kinds_used",
    "render",
    "roots_used",
]
