"""Redis test-database claims on a real Redis: foreign keys are never flushed, at claim or
at release, and a killed run's claim lapses instead of vouching for what came after it.

The server is this run's own (``dockwork_servers``), whose other workers claim databases
from 1 upwards: each test picks a free database from the top, names it to the claim with
``indices``, and deletes afterwards only the keys it wrote itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis

from dockwork import urls
from dockwork.errors import TestDatabaseError
from dockwork.testing import databases

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dockwork.testing.servers.base import Servers

pytestmark = pytest.mark.docker

#: a claim process that stands in for a run: claims, writes, waits to be told to release
CLAIMING_RUN = """
import sys
import redis
from dockwork.testing import databases

url, index, lease, write = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
claim = databases.RedisClaim(url, owner="run-in-a-subprocess", indices=[index], lease_seconds=lease)
mine = redis.Redis.from_url(claim.acquire())
if write:
    mine.set(write, "a test's key")
mine.close()  # nothing of this run stays selected on the database
print("claimed", flush=True)
sys.stdin.readline()
claim.release()
print("released", flush=True)
"""


class Db:
    """One logical database of the run's Redis that this test has to itself.

    Every look at it is a connection of its own, closed at once: a connection left selected
    on the database would make a claim skip it."""

    def __init__(self, server: str, index: int, ledger: int) -> None:
        self.server = server
        self.index = index
        self.url = urls.redis_with_db(server, index)
        self.ledger = redis.Redis.from_url(urls.redis_with_db(server, ledger))
        self.slot = f"{databases.CLAIM_PREFIX}{index}"
        self.written: list[str] = []

    def do(self, command: str, *args: str) -> Any:
        """One command on the database, on a connection of its own."""
        with redis.Redis.from_url(self.url) as client:
            return client.execute_command(command, *args)

    def write(self, key: str, value: str = "somebody's data") -> None:
        """A key the test writes itself (and deletes afterwards)."""
        self.written.append(key)
        self.do("SET", key, value)

    def get(self, key: str) -> bytes | None:
        value = self.do("GET", key)
        return value if value is None else bytes(value)

    def wait_until_unclaimed(self, timeout: float = 20) -> None:
        """Until the ledger slot and the marker are gone: a dead claim's lease lapsed."""
        deadline = time.monotonic() + timeout
        while self.ledger.exists(self.slot) or self.do("EXISTS", databases.MARKER):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the claim of database {self.index} did not lapse within {timeout}s: "
                    f"ledger {self.ledger.get(self.slot)!r}, ttl {self.ledger.pttl(self.slot)} "
                    f"ms; marker ttl {self.do('PTTL', databases.MARKER)} ms"
                )
            time.sleep(0.1)


#: this module's tests reserve their databases in the ledger database (SET NX) against one
#: another under xdist; dockwork's claims from 1 upwards do not reach them
RESERVED = "tests:test_redis_claim:reserved:"


@pytest.fixture
def db(dockwork_servers: Servers) -> Iterator[Db]:
    """The highest-numbered database that is unclaimed, empty, unused and not reserved by
    another test of this module."""
    server = dockwork_servers.redis_url
    if server is None:
        pytest.skip("this run has no Redis")
    with redis.Redis.from_url(urls.redis_with_db(server, 0)) as probe:
        count = int(probe.config_get("databases")["databases"])
        used = {str(c.get("db")) for c in probe.client_list()}
    ledger = redis.Redis.from_url(urls.redis_with_db(server, count - 1))
    for index in range(count - 2, 0, -1):
        if str(index) in used or ledger.exists(f"{databases.CLAIM_PREFIX}{index}"):
            continue
        if not ledger.set(f"{RESERVED}{index}", os.getpid(), nx=True, ex=600):
            continue
        with redis.Redis.from_url(urls.redis_with_db(server, index)) as client:
            if client.dbsize() == 0:
                break
        ledger.delete(f"{RESERVED}{index}")
    else:
        ledger.close()
        pytest.skip("no free Redis database on this run's server")
    picked = Db(server, index, count - 1)
    try:
        yield picked
    finally:
        if picked.written:
            picked.do("DEL", *picked.written)
        picked.ledger.close()
        ledger.delete(f"{RESERVED}{index}")
        ledger.close()


@pytest.fixture
def claims() -> Iterator[list[databases.RedisClaim]]:
    """Claims made by a test, released afterwards (a no-op for released ones)."""
    made: list[databases.RedisClaim] = []
    yield made
    for claim in made:
        claim.release()


def start_run(db: Db, lease: float, write: str = "") -> subprocess.Popen[str]:
    """A process that claimed ``db`` (and wrote ``write`` into it)."""
    argv = [sys.executable, "-c", textwrap.dedent(CLAIMING_RUN), db.server, str(db.index)]
    proc = subprocess.Popen(
        [*argv, str(lease), write],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "claimed":
        proc.kill()
        pytest.fail(f"the claiming process failed: {line}{proc.communicate()[0]}")
    return proc


def freeze(proc: subprocess.Popen[str], db: Db) -> None:
    """SIGSTOP ``proc`` at a moment its lease renewal has no connection open on ``db``."""
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        with redis.Redis.from_url(db.url) as observer:
            me = observer.client_id()
            others = [
                c for c in observer.client_list() if c["db"] == str(db.index) and int(c["id"]) != me
            ]
        if not others:
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    pytest.fail(f"the claiming process kept a connection on database {db.index}: {others}")


def test_a_marker_left_without_a_lease_does_not_make_foreign_keys_disposable(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    # what a run of an earlier dockwork, killed with -9, left: a marker that never expires
    db.write(databases.MARKER, "killed-run-of-an-earlier-dockwork")
    db.write("written-after-that-run-died")
    claim = databases.RedisClaim(db.server, owner="later-run", indices=[db.index])
    claims.append(claim)

    with pytest.raises(TestDatabaseError) as refused:
        claim.acquire()

    assert f"Redis database {db.index} on redis://" in str(refused.value)
    assert "1 key(s) that dockwork did not write; it is never flushed" in str(refused.value)
    assert db.get("written-after-that-run-died") == b"somebody's data"
    assert not db.ledger.exists(db.slot), "the refused claim gave its ledger slot back"


def test_a_run_killed_with_sigkill_leaves_nothing_that_lets_a_later_run_flush(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    killed = start_run(db, lease=1.5, write="written-by-the-killed-run")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    db.written.append("written-by-the-killed-run")
    db.write("written-after-the-run-died")

    db.wait_until_unclaimed()  # its lease lapses: the database is not blocked for hours
    later = databases.RedisClaim(db.server, owner="later-run", indices=[db.index])
    claims.append(later)
    with pytest.raises(TestDatabaseError) as refused:
        later.acquire()

    assert f"Redis database {db.index} on redis://" in str(refused.value)
    assert "2 key(s) that dockwork did not write; it is never flushed" in str(refused.value)
    assert db.get("written-after-the-run-died") == b"somebody's data"
    assert db.get("written-by-the-killed-run") == b"a test's key"


def test_a_database_a_program_is_connected_to_is_not_claimed_even_when_empty(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    """The dev app on the database the tests would use: its keys written during the run
    would go with the flush at release, so the database is never handed out."""
    app = redis.Redis.from_url(db.url)
    try:
        app.ping()  # connected, selected on the database, no keys yet
        claim = databases.RedisClaim(db.server, owner="run", indices=[db.index])
        claims.append(claim)
        with pytest.raises(TestDatabaseError) as refused:
            claim.acquire()
        db.written.append("the-apps-session")
        app.set("the-apps-session", "user data")
        claim.release()
    finally:
        app.close()

    assert f"database {db.index} is selected by 1 other connection(s)" in str(refused.value)
    assert db.get("the-apps-session") == b"user data"
    assert not db.do("EXISTS", databases.MARKER)


def test_release_does_not_flush_a_database_another_claim_took_after_the_lease_lapsed(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    frozen = start_run(db, lease=1.5)
    try:
        freeze(frozen, db)  # a run frozen longer than its lease
        db.wait_until_unclaimed()
        later = databases.RedisClaim(db.server, owner="later-run", indices=[db.index])
        claims.append(later)
        mine = redis.Redis.from_url(later.acquire())
        db.written.append("the-later-runs-key")
        mine.set("the-later-runs-key", "its data")
        mine.close()
    finally:
        frozen.send_signal(signal.SIGCONT)
    out = frozen.communicate("release\n", timeout=30)[0]

    assert "released" in out, out
    assert db.get("the-later-runs-key") == b"its data", "the frozen run flushed another's"
    assert db.ledger.get(db.slot) == later.token.encode()
    assert db.get(databases.MARKER) == later.token.encode()
    assert later.release() is True
    assert db.do("DBSIZE") == 0


def test_a_live_claim_is_renewed_and_lapses_on_its_own(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    claim = databases.RedisClaim(db.server, owner="run", indices=[db.index], lease_seconds=1.0)
    claims.append(claim)
    claim.acquire()
    time.sleep(2.5)  # well past the lease: only renewal keeps it

    assert db.ledger.get(db.slot) == claim.token.encode()
    assert db.get(databases.MARKER) == claim.token.encode()
    assert 0 < db.ledger.pttl(db.slot) <= 1000, "the ledger slot carries the lease"
    assert 0 < db.do("PTTL", databases.MARKER) <= 1000, "the marker carries the lease"
    other = databases.RedisClaim(db.server, owner="other", indices=[db.index])
    with pytest.raises(TestDatabaseError, match=f"database {db.index} is claimed by run:"):
        other.acquire()


def test_a_dedicated_servers_leftovers_of_a_killed_run_are_flushed(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    """On a server dockwork started for tests, every key was written by tests: a killed
    run's leftovers (on a reused container, say) do not block the next run."""
    db.write("written-by-a-killed-run")
    claim = databases.RedisClaim(db.server, owner="run", indices=[db.index], dedicated=True)
    claims.append(claim)

    url = claim.acquire()

    assert url == db.url
    assert db.get("written-by-a-killed-run") is None
    assert db.get(databases.MARKER) == claim.token.encode()


def test_tests_that_flush_their_own_database_still_get_it_flushed_at_release(
    db: Db, claims: list[databases.RedisClaim]
) -> None:
    """A guard for the release rule (passes before the change too): a missing marker, which
    the tests' own FLUSHDB removes, does not leave their keys behind."""
    claim = databases.RedisClaim(db.server, owner="run", indices=[db.index])
    claims.append(claim)
    mine = redis.Redis.from_url(claim.acquire())
    mine.flushdb()  # a test's own clean-up fixture
    mine.set("a-tests-key", "1")
    mine.close()

    claim.release()

    assert db.do("DBSIZE") == 0
    assert not db.ledger.exists(db.slot)
