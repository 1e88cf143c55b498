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
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from dockwork import urls
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
            kind = ROOTS.get(root)
            names = [f.name for f in dataclasses.fields(kind[0])] if kind else []
            if kind is None or attr not in names:
                known = ", ".join(
                    f"{{{r}.{f.name}}}"
                    for r, (c, _) in ROOTS.items()
                    for f in dataclasses.fields(c)
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


def kinds_used(pairs: Sequence[tuple[str, str]]) -> set[str]:
    """The server kinds the templates read."""
    return {field.partition(".")[0] for _, template in pairs for field in _fields(template)} & set(
        ROOTS
    )


def render(
    pairs: Sequence[tuple[str, str]],
    postgres: Database | None = None,
    redis: RedisDatabase | None = None,
) -> dict[str, str]:
    """The variables, their templates filled in (a kind not given leaves its variables out)."""
    given: Mapping[str, object] = {
        k: v for k, v in (("postgres", postgres), ("redis", redis)) if v is not None
    }
    out = {}
    for variable, template in pairs:
        if {f.partition(".")[0] for f in _fields(template)} <= set(given):
            out[variable] = template.format_map(given)
    return out


__all__ = ["Database", "RedisDatabase", "check_templates", "kinds_used", "render"]
