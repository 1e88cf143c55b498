"""Per-worker test databases and Redis databases on a run's servers.

- PostgreSQL: one template database, migrated once, then ``CREATE DATABASE … TEMPLATE``
  for each worker. A PostgreSQL advisory lock serialises template creation and cloning, so
  any number of processes (xdist workers, concurrent runs) coordinate through the server.
- Redis: each worker claims a logical database with ``SET NX`` in a ledger database, marks
  it as dockwork's, and only ever flushes a database that holds nothing but what dockwork
  put there: a database with anybody else's keys is refused, never flushed.

Errors of psycopg and redis-py become :class:`~dockwork.errors.TestDatabaseError` here,
with passwords masked.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockwork import urls
from dockwork.errors import TestDatabaseError, boundary
from dockwork.runner import with_interpreter

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

LOCK_KEY = 0x646F636B  # "dock"
CLAIM_PREFIX = "dockwork:redis-db:"
#: present in every logical database dockwork has claimed: marks its keys as disposable
MARKER = "dockwork:test-database"
CLAIM_SECONDS = 6 * 3600


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fingerprint(paths: Sequence[Path]) -> str:
    """A hash of every file under ``paths``: changes when a migration or model changes."""
    digest = hashlib.sha256()
    for root in paths:
        if root.is_file():
            files = [root]
        else:
            files = sorted(
                p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
        for f in files:
            digest.update(f.relative_to(root.parent).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """How to build the migrated template: the command, where, and the URL it gets."""

    name: str
    migrate_argv: tuple[str, ...]
    cwd: Path
    url_variable: str = "DATABASE_URL"
    scheme: str = "postgresql"


def _pg(admin_url: str, what: str) -> AbstractContextManager[None]:
    hint = f"The server is {urls.mask(admin_url)}."
    return boundary(TestDatabaseError, what, hint)


def ensure_template(admin_url: str, spec: TemplateSpec) -> float:
    """Create and migrate the template unless it exists; return the seconds spent."""
    import psycopg  # noqa: PLC0415

    t0 = time.monotonic()
    with (
        _pg(admin_url, f"preparing the test template {spec.name!r} failed"),
        psycopg.connect(urls.libpq(admin_url), autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            row = conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (spec.name,)
            ).fetchone()
            if row is not None and row[0]:
                return time.monotonic() - t0
            if row is not None:  # a half-built template from a crashed run: dockwork's own
                conn.execute(f"DROP DATABASE {_quote_ident(spec.name)} WITH (FORCE)")
            create(admin_url, spec.name)
            _migrate(urls.with_database(admin_url, spec.name), spec)
            # marks it finished; also lets non-superusers clone it
            conn.execute(f"ALTER DATABASE {_quote_ident(spec.name)} WITH IS_TEMPLATE true")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return time.monotonic() - t0


def create(admin_url: str, name: str) -> None:
    """An empty UTF-8 database: images differ in initdb defaults (SQL_ASCII without a locale)."""
    import psycopg  # noqa: PLC0415

    with (
        _pg(admin_url, f"creating the test database {name!r} failed"),
        psycopg.connect(urls.libpq(admin_url), autocommit=True) as conn,
    ):
        conn.execute(
            f"CREATE DATABASE {_quote_ident(name)} "
            "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )


def _migrate(url: str, spec: TemplateSpec) -> None:
    # the interpreter running the tests, not whatever `python` is on PATH
    argv = with_interpreter(spec.migrate_argv, sys.executable)
    env = {**os.environ, spec.url_variable: urls.with_scheme(url, spec.scheme)}
    proc = subprocess.run(argv, cwd=spec.cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = urls.mask_text((proc.stderr or proc.stdout).strip(), url)
        tail = "\n".join(output.splitlines()[-25:])
        raise TestDatabaseError(
            f"migrating the test template with `{' '.join(spec.migrate_argv)}` failed (exit "
            f"{proc.returncode}):\n{tail}\nFix the migration; `migrate_command` in "
            "[tool.dockwork] is what runs."
        )


def clone(admin_url: str, template: str, name: str) -> float:
    """``CREATE DATABASE name TEMPLATE template`` (replacing a leftover); seconds spent."""
    import psycopg  # noqa: PLC0415

    t0 = time.monotonic()
    with (
        _pg(admin_url, f"cloning the test database {name!r} failed"),
        psycopg.connect(urls.libpq(admin_url), autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE {_quote_ident(template)}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return time.monotonic() - t0


def drop(admin_url: str, *names: str) -> None:
    """Drop databases (templates included) if they exist."""
    import psycopg  # noqa: PLC0415

    with (
        _pg(admin_url, f"dropping the test database(s) {', '.join(names)} failed"),
        psycopg.connect(urls.libpq(admin_url), autocommit=True) as conn,
    ):
        for name in names:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                continue
            # a template cannot be dropped until it is a template no more
            conn.execute(f"ALTER DATABASE {_quote_ident(name)} WITH IS_TEMPLATE false")
            conn.execute(f"DROP DATABASE {_quote_ident(name)} WITH (FORCE)")


class RedisClaim:
    """A logical Redis database owned by one worker until released.

    Claims are kept in the server's last logical database (the ledger), never in db 0,
    which applications use by default; workers get databases 1 … N-2. A claimed database is
    flushed only when it is empty or carries dockwork's marker (left by an earlier run).
    """

    def __init__(self, redis_url: str, owner: str | None = None) -> None:
        self.base_url = redis_url
        self.owner = owner or f"{os.getpid()}-{secrets.token_hex(4)}"
        self.index: int | None = None
        self._ledger = ""

    def _boundary(self, what: str) -> AbstractContextManager[None]:
        return boundary(TestDatabaseError, what, f"The server is {urls.mask(self.base_url)}.")

    def acquire(self) -> str:
        """Claim a free database index, check and flush it, and return its URL."""
        import redis  # noqa: PLC0415

        with self._boundary("claiming a Redis test database failed"):
            probe = redis.Redis.from_url(urls.redis_with_db(self.base_url, 0))
            try:
                databases = int(probe.config_get("databases").get("databases") or 16)
            finally:
                probe.close()
            self._ledger = urls.redis_with_db(self.base_url, databases - 1)
            ledger = redis.Redis.from_url(self._ledger)
            try:
                for index in range(1, databases - 1):
                    if ledger.set(f"{CLAIM_PREFIX}{index}", self.owner, nx=True, ex=CLAIM_SECONDS):
                        self.index = index
                        break
                else:
                    raise TestDatabaseError(
                        f"all {databases - 2} Redis test databases of "
                        f"{urls.mask(self.base_url)} are claimed by other workers or runs. Use "
                        "fewer xdist workers, or wait for other runs to finish."
                    )
            finally:
                ledger.close()
            url = urls.redis_with_db(self.base_url, self.index)
            self._take(url)
        return url

    def _take(self, url: str) -> None:
        """Flush the claimed database if only dockwork wrote to it, then mark it."""
        import redis  # noqa: PLC0415

        client = redis.Redis.from_url(url)
        try:
            keys = client.dbsize()
            if keys and not client.exists(MARKER):
                refused = TestDatabaseError(
                    f"Redis database {self.index} on {urls.mask(self.base_url)} holds {keys} "
                    "key(s) that dockwork did not write; it is never flushed. Point "
                    "DOCKWORK_TEST_REDIS_URL at a server only tests use, or empty that "
                    "database yourself if its keys are disposable."
                )
                self._give_back()
                raise refused
            client.flushdb()
            client.set(MARKER, self.owner)
        finally:
            client.close()

    def _give_back(self) -> None:
        import redis  # noqa: PLC0415

        ledger = redis.Redis.from_url(self._ledger)
        try:
            key = f"{CLAIM_PREFIX}{self.index}"
            if ledger.get(key) == self.owner.encode():
                ledger.delete(key)
        finally:
            ledger.close()
        self.index = None

    def release(self) -> None:
        """Flush and give the database back (only if this worker still owns it)."""
        if self.index is None:
            return
        import redis  # noqa: PLC0415

        with self._boundary("releasing a Redis test database failed"):
            ledger = redis.Redis.from_url(self._ledger)
            try:
                if ledger.get(f"{CLAIM_PREFIX}{self.index}") == self.owner.encode():
                    client = redis.Redis.from_url(urls.redis_with_db(self.base_url, self.index))
                    try:
                        client.flushdb()
                    finally:
                        client.close()
            finally:
                ledger.close()
            self._give_back()
