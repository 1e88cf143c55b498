"""Per-worker test databases and Redis databases on a run's servers.

- PostgreSQL: one template database, migrated once, then ``CREATE DATABASE … TEMPLATE``
  for each worker. A PostgreSQL advisory lock serialises template creation and cloning, so
  any number of processes (xdist workers, concurrent runs) coordinate through the server.
- Redis: each worker claims a logical database with ``SET NX`` in a ledger database and a
  marker in the database itself, both a lease its process renews (a killed run's claim
  lapses); it takes only an empty database nobody else is connected to, and flushes only
  while its lease holds: keys nobody vouches for are refused, never flushed.

Errors of psycopg and redis-py become :class:`~dockwork.errors.TestDatabaseError` here,
with passwords masked.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import threading
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

    from redis import Redis

LOCK_KEY = 0x646F636B  # "dock"
CLAIM_PREFIX = "dockwork:redis-db:"
#: in every logical database a live claim holds, with the claim's token and lease
MARKER = "dockwork:test-database"
#: a claim lapses this long after its process stopped renewing it (killed, frozen)
LEASE_SECONDS = 120.0


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted."""
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
    #: more variables for the migrations, pointing at the template (``test_env``'s): they
    #: win over this process's own, which name its own database
    env: tuple[tuple[str, str], ...] = ()


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
                conn.execute(f"DROP DATABASE {quote_ident(spec.name)} WITH (FORCE)")
            create(admin_url, spec.name)
            _migrate(urls.with_database(admin_url, spec.name), spec)
            # marks it finished; also lets non-superusers clone it
            conn.execute(f"ALTER DATABASE {quote_ident(spec.name)} WITH IS_TEMPLATE true")
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
            f"CREATE DATABASE {quote_ident(name)} "
            "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )


def _migrate(url: str, spec: TemplateSpec) -> None:
    # the interpreter running the tests, not whatever `python` is on PATH
    argv = with_interpreter(spec.migrate_argv, sys.executable)
    env = {**os.environ, spec.url_variable: urls.with_scheme(url, spec.scheme), **dict(spec.env)}
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
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(template)}")
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
            conn.execute(f"ALTER DATABASE {quote_ident(name)} WITH IS_TEMPLATE false")
            conn.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")


class RedisClaim:
    """A logical Redis database owned by one worker until released.

    Claims are kept in the server's last logical database (the ledger), never in db 0,
    which applications use by default; workers get databases 1 … N-2 (or ``indices``).

    **A claim is a lease.** The ledger key ``dockwork:redis-db:<N>`` and the marker
    ``dockwork:test-database`` inside database N both hold this claim's token (the owner,
    i.e. the run and worker, plus a random part) and expire after ``lease_seconds``; a
    thread of the claiming process renews them while it lives. A run killed with SIGKILL
    stops renewing, so its claim lapses on its own and nothing is left that vouches for the
    keys it wrote: they count as anybody's keys from then on.

    **Claiming database N** (in index order, first one that qualifies):

    - its ledger key or a live marker holds another claim → skipped (a live run uses it);
    - another connection is selected on it (``CLIENT LIST``; skipped when the server
      refuses that command) → skipped: a program uses it even if it holds no keys yet;
    - it holds any key besides the marker just set → **never flushed**: the claim fails
      naming the database, because a program's data and a killed run's leftovers look the
      same. Only on a ``dedicated`` server (one dockwork started for tests: every key on
      it was written by tests) are such keys a dead claim's leftovers, and flushed;
    - otherwise (empty) it is taken.

    **Releasing** flushes the database only while the ledger lease is still this claim's
    and the marker is not another claim's. A lapsed lease (the process was frozen longer
    than ``lease_seconds``) or another claim's marker means someone else may have taken
    the database: it is left as it is. A missing marker alone does not stop the flush:
    the tests flushing their own database remove it (the renewal puts it back). Nothing in
    Redis tells who wrote a key, so a program that starts writing into a test database
    *while* a run holds it loses those keys at release; the claim rules keep runs off
    databases that are in use or hold data when they are claimed.
    """

    def __init__(
        self,
        redis_url: str,
        owner: str | None = None,
        *,
        dedicated: bool = False,
        indices: Sequence[int] | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.base_url = redis_url
        self.owner = owner or f"{os.getpid()}-{secrets.token_hex(4)}"
        #: what the ledger key and the marker hold while this claim lives
        self.token = f"{self.owner}:{secrets.token_hex(4)}"
        self.dedicated = dedicated
        self.indices = tuple(indices) if indices is not None else None
        self.lease_seconds = lease_seconds
        self.index: int | None = None
        self._ledger = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    def _boundary(self, what: str) -> AbstractContextManager[None]:
        return boundary(TestDatabaseError, what, f"The server is {urls.mask(self.base_url)}.")

    def acquire(self) -> str:
        """Claim a free, empty database (see the class docstring) and return its URL."""
        import redis  # noqa: PLC0415

        with self._boundary("claiming a Redis test database failed"):
            probe = redis.Redis.from_url(urls.redis_with_db(self.base_url, 0))
            try:
                databases = int(probe.config_get("databases").get("databases") or 16)
            finally:
                probe.close()
            self._ledger = urls.redis_with_db(self.base_url, databases - 1)
            candidates = self.indices if self.indices is not None else range(1, databases - 1)
            skipped: list[str] = []
            ledger = redis.Redis.from_url(self._ledger)
            try:
                for index in candidates:
                    if not 0 <= index < databases - 1:
                        raise TestDatabaseError(
                            f"Redis database {index} cannot be a test database of "
                            f"{urls.mask(self.base_url)}: it has databases 0 … {databases - 2} "
                            f"besides the ledger ({databases - 1})."
                        )
                    key = f"{CLAIM_PREFIX}{index}"
                    if not ledger.set(key, self.token, nx=True, px=self._lease_ms):
                        skipped.append(f"database {index} is claimed by {_text(ledger.get(key))}")
                        continue
                    self.index = index
                    busy = self._take(urls.redis_with_db(self.base_url, index))
                    if busy is None:
                        break
                    self._give_back()
                    skipped.append(f"database {index} is {busy}")
                else:
                    raise TestDatabaseError(
                        f"no Redis test database of {urls.mask(self.base_url)} is free "
                        f"({'; '.join(skipped) or 'none to try'}). Use fewer xdist "
                        "workers, wait for other runs to finish, or point "
                        "DOCKWORK_TEST_REDIS_URL at a server only tests use."
                    )
            finally:
                ledger.close()
            url = urls.redis_with_db(self.base_url, index)
        self._start_renewing(url)
        return url

    def _take(self, url: str) -> str | None:
        """Mark the claimed database if it is free; None, or why it is not (a live claim
        or another connection: skipped). Keys nobody vouches for: an error, never a flush
        (except on a dedicated server)."""
        import redis  # noqa: PLC0415

        # one connection, so that CLIENT ID names the only one of ours
        client = redis.Redis.from_url(url, single_connection_client=True)
        try:
            ours = bool(client.set(MARKER, self.token, nx=True, px=self._lease_ms))
            # a marker without a lease was left by a dockwork before leases: it vouches for
            # nothing, and is replaced when the database holds nothing else
            if not ours and client.pttl(MARKER) != -1:
                return f"in use by {_text(client.get(MARKER))}, whose lease is live"
            others = _other_connections(client, self.index)
            if others:
                client.eval(_DELETE_IF_HELD, 1, MARKER, self.token)
                return f"selected by {others} other connection(s)"
            keys = int(client.dbsize()) - 1  # the marker
            if keys <= 0:
                client.set(MARKER, self.token, px=self._lease_ms)
                return None
            if self.dedicated:  # a dockwork test server: a dead claim's leftovers
                client.flushdb()
                client.set(MARKER, self.token, px=self._lease_ms)
                return None
            client.eval(_DELETE_IF_HELD, 1, MARKER, self.token)
            refused = TestDatabaseError(
                f"Redis database {self.index} on {urls.mask(self.base_url)} holds {keys} "
                "key(s) that dockwork did not write; it is never flushed. Keys a killed run "
                f"left there count as such once its claim has lapsed ({self.lease_seconds:g} "
                "s): nothing tells them from data written since. Point "
                "DOCKWORK_TEST_REDIS_URL at a server only tests use, or empty database "
                f"{self.index} yourself if its keys are disposable."
            )
            self._give_back()
            raise refused
        finally:
            client.close()

    def _start_renewing(self, url: str) -> None:
        self._stop = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew_until_released,
            args=(self._stop, self._ledger, f"{CLAIM_PREFIX}{self.index}", url),
            name=f"dockwork-redis-lease-{self.index}",
            daemon=True,  # dies with the process: a killed run's lease lapses
        )
        self._renewer.start()

    def _renew_until_released(
        self, stop: threading.Event, ledger_url: str, key: str, url: str
    ) -> None:
        import redis  # noqa: PLC0415

        # a renewal never hangs past the lease it renews; the claimed database gets a
        # connection per renewal, so that one of ours is never parked on it (a claim skips a
        # database another connection is selected on)
        timeout = max(1.0, self.lease_seconds / 6)
        ledger = redis.Redis.from_url(ledger_url, socket_timeout=timeout)
        try:
            while not stop.wait(self.lease_seconds / 6):
                try:
                    # the ledger first: the marker is put back only while the ledger is ours
                    if ledger.eval(_RENEW, 1, key, self.token, self._lease_ms) < 0:
                        return  # lapsed and claimed by another: release will not flush
                    with redis.Redis.from_url(url, socket_timeout=timeout) as client:
                        if client.eval(_RENEW, 1, MARKER, self.token, self._lease_ms) < 0:
                            return
                except redis.RedisError:
                    continue  # a blip: the lease outlasts several renewals
        finally:
            ledger.close()

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
            self._renewer = None

    def _give_back(self) -> None:
        import redis  # noqa: PLC0415

        ledger = redis.Redis.from_url(self._ledger)
        try:
            ledger.eval(_DELETE_IF_HELD, 1, f"{CLAIM_PREFIX}{self.index}", self.token)
        finally:
            ledger.close()
        self.index = None

    def release(self) -> bool:
        """Stop renewing, flush the database while the lease is still this claim's, and
        give it back. Returns whether it was flushed."""
        if self.index is None:
            return False
        self._stop_renewing()
        import redis  # noqa: PLC0415

        with self._boundary("releasing a Redis test database failed"):
            ledger = redis.Redis.from_url(self._ledger)
            client = redis.Redis.from_url(urls.redis_with_db(self.base_url, self.index))
            try:
                held = _text(ledger.get(f"{CLAIM_PREFIX}{self.index}")) == self.token
                marker = client.get(MARKER)
                flush = held and marker in {None, self.token.encode()}
                if flush:
                    client.flushdb()
                else:  # someone else's now, or nobody's: leave every key where it is
                    client.eval(_DELETE_IF_HELD, 1, MARKER, self.token)
            finally:
                ledger.close()
                client.close()
            self._give_back()
        return flush


#: extend a key this claim holds; put it back if it is gone; -1 if another claim holds it
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if held then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
"""
_DELETE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _other_connections(client: Redis, index: int | None) -> int:
    """How many connections besides ``client``'s own are selected on database ``index``
    (0 when the server does not let us list its clients)."""
    import redis  # noqa: PLC0415

    try:
        me = int(client.client_id())
        listed = client.client_list()
    except redis.ResponseError:  # CLIENT refused by an ACL or renamed away
        return 0
    return sum(1 for c in listed if int(c.get("id", me)) != me and str(c.get("db")) == str(index))
