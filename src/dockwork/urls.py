"""URLs of database and cache servers: one place that parses, rewrites and masks them.

Every URL dockwork prints goes through :func:`mask`; every rewrite (another database, the
libpq form, a Redis logical database) is done here, on parsed URLs, never by hand.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: SQLAlchemy driver schemes for PostgreSQL that a project may configure
POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgresql+asyncpg", "postgresql+psycopg2")


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print or log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_text(text: str, *urls: str | None) -> str:
    """``text`` with each of ``urls`` (and any ``user:password@`` of theirs, which is how a
    URL's credentials appear in other forms) masked. The bare password is not searched for:
    a short one would turn every word containing it into a give-away."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, mask(url))
        parts = urlsplit(url)
        if parts.password:
            userinfo = f"{parts.username or ''}:{parts.password}@"
            text = text.replace(userinfo, f"{parts.username or ''}:{MASK}@")
    return text


def libpq(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+asyncpg://``, ``postgres://``) as libpq understands it."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+", 1)[0] in {"postgresql", "postgres"}:
        return "postgresql://" + rest
    return url


def with_scheme(url: str, scheme: str) -> str:
    """A PostgreSQL URL with the driver scheme a project's code expects."""
    return scheme + "://" + libpq(url).partition("://")[2]


def with_database(url: str, database: str) -> str:
    """A PostgreSQL ``url`` pointing at another database (the path component)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def redis_with_db(url: str, index: int) -> str:
    """A Redis ``url`` selecting logical database ``index``.

    redis-py gives a ``db`` query parameter priority over the path, so it is removed: the
    path alone names the database.
    """
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "db"])
    return urlunsplit(parts._replace(path=f"/{index}", query=query))


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """The host and port a URL names (loopback when it names none)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


__all__ = [
    "POSTGRES_SCHEMES",
    "host_port",
    "libpq",
    "mask",
    "mask_text",
    "redis_with_db",
    "with_database",
    "with_scheme",
]
