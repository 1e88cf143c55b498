"""`inv db.*` under faults, against the stack's real PostgreSQL: a real signal sent to a
real `inv db.restore` / `inv db.reset` at each step that changes the server, and a dump
onto a real filesystem without hard links.

Each step is reached by watching the server, never by sleeping: the test reads
pg_stat_activity and pg_database over the stack's published port, and holds a row lock on
a pg_database row (an uncommitted `ALTER DATABASE … CONNECTION LIMIT`) so that the task's
own `ALTER DATABASE` waits at the step under test until the signal has been sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.helpers import default_signals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SIGNALS = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}
#: rows in the big dump: its pg_restore lasts long enough to be caught running
BIG = 300_000


def one(
    conn: psycopg.Connection[tuple[object, ...]], query: str, params: tuple[object, ...] = ()
) -> object:
    row = conn.execute(query, params or None).fetchone()
    return row[0] if row else None


def users(stack: Stack) -> int:
    """Rows in the app's users table, over a new connection (proof it accepts them)."""
    with stack.connect("app") as conn:
        return int(str(one(conn, "SELECT count(*) FROM users")))


def asides(stack: Stack) -> list[str]:
    """Databases set aside by restore/reset (scratch or replaced ones)."""
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^app_(before_)?(restore|reset)_'"
        ).fetchall()
    return [str(r[0]) for r in rows]


def fill(stack: Stack, rows: int) -> None:
    """The app's users table holding exactly ``rows`` rows."""
    with stack.connect("app") as conn:
        conn.execute("DELETE FROM email_outbox")
        conn.execute("DELETE FROM users")
        conn.execute(
            "INSERT INTO users (email, name) SELECT 'u' || g || '@x.test', 'U' "
            "FROM generate_series(1, %s) g",
            (rows,),
        )


@pytest.fixture(scope="module")
def dumps(module_stack: Stack) -> dict[str, Path]:
    """A big dump (slow to restore) and a small one, made by `inv db.dump`."""
    stack = module_stack
    stack.inv("migrate")
    made = {}
    for name, rows in (("big", BIG), ("small", 5)):
        fill(stack, rows)
        stack.inv("db.dump", "--file", f"{name}.dump")
        made[name] = stack.root / f"{name}.dump"
    return made


@pytest.fixture(autouse=True)
def leaves_the_stack_as_found(module_stack: Stack) -> Iterator[None]:
    """After each test, even a failing one: the app's database open, nothing set aside (so
    one test's failure is not the next one's)."""
    yield
    with contextlib.suppress(psycopg.Error), module_stack.connect() as conn:
        conn.execute("ALTER DATABASE app ALLOW_CONNECTIONS true")
        for name in asides(module_stack):
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def start(stack: Stack, *args: str) -> subprocess.Popen[str]:
    """`inv ARGS` in the background, as a user's shell or a CI job starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=stack.root,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C acts (a shell without job control would start us with SIGINT ignored)
        preexec_fn=default_signals,  # noqa: PLW1509 - signalled as CI would
    )


def wait_for(
    proc: subprocess.Popen[str], found: Callable[[], object], what: str, deadline: float = 120
) -> object:
    """Poll the server until ``found()`` is truthy while the task still runs."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := found():
            return value
        if proc.poll() is not None:
            pytest.fail(f"the task ended before {what}:\n{proc.communicate()[0]}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"never saw {what}; the task's output:\n{proc.communicate()[0]}")


def finish(proc: subprocess.Popen[str]) -> str:
    try:
        return proc.communicate(timeout=180)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def waiting_on_lock(conn: psycopg.Connection[tuple[object, ...]], pattern: str) -> object:
    """A backend whose query matches ``pattern`` (a LIKE) and waits for a lock."""
    return one(
        conn,
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        (pattern,),
    )


@contextlib.contextmanager
def row_locked(stack: Stack, database: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """``database``'s pg_database row updated by an open transaction of the test's: another
    ALTER DATABASE on it waits until the block ends (the transaction is rolled back).
    Yields a second connection to watch from (a transaction sees pg_stat_activity as it
    was at its first look)."""
    with stack.connect() as lock, stack.connect() as watch:
        lock.execute("BEGIN")
        lock.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT -1')
        try:
            yield watch
        finally:
            lock.execute("ROLLBACK")


def the_line(output: str) -> str:
    """dockwork's one line on how the task ended."""
    lines = [ln for ln in output.splitlines() if ln.startswith("dockwork: ") and "interr" in ln]
    assert len(lines) == 1, output
    return lines[0]


def settled(stack: Stack, output: str, proc: subprocess.Popen[str], signum: int) -> None:
    """What must hold after any signal: the signal's exit code, no traceback, the app's
    database accepting connections, nothing set aside left."""
    assert proc.returncode == SIGNALS[signal.Signals(signum)], output
    assert "Traceback" not in output, output
    with stack.connect() as conn:
        assert one(conn, "SELECT datallowconn FROM pg_database WHERE datname = 'app'") is True
    assert asides(stack) == [], output


@pytest.mark.parametrize("signum", list(SIGNALS), ids=lambda s: signal.Signals(s).name)
def test_restore_signalled_during_pg_restore_drops_the_scratch_database(
    module_stack: Stack, dumps: dict[str, Path], signum: int
) -> None:
    stack = module_stack
    fill(stack, 3)
    proc = start(stack, "db.restore", str(dumps["big"]), "--force")
    with stack.connect() as conn:
        wait_for(
            proc,
            lambda: one(
                conn,
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_restore' "
                "AND datname LIKE 'app\\_restore\\_%' AND state = 'active'",
            ),
            "pg_restore running",
        )
        proc.send_signal(signum)
        output = finish(proc)
    settled(stack, output, proc, signum)
    line = the_line(output)
    name = signal.Signals(signum).name
    assert re.fullmatch(
        rf"dockwork: restore interrupted by {name}: database 'app' was not changed and "
        r"accepts connections; the scratch database 'app_restore_\d+' was dropped\.",
        line,
    ), line
    assert users(stack) == 3, "the old data, complete"


@pytest.mark.parametrize("signum", list(SIGNALS), ids=lambda s: signal.Signals(s).name)
def test_restore_signalled_while_the_database_is_closed_reopens_it(
    module_stack: Stack, dumps: dict[str, Path], signum: int
) -> None:
    stack = module_stack
    fill(stack, 3)
    # the task's `ALTER DATABASE app ALLOW_CONNECTIONS false` waits behind the test's lock
    with row_locked(stack, "app") as watch:
        proc = start(stack, "db.restore", str(dumps["small"]), "--force")
        try:
            wait_for(
                proc,
                lambda: waiting_on_lock(watch, "%ALLOW_CONNECTIONS false%"),
                "the swap closing the database",
            )
            proc.send_signal(signum)  # while `docker compose exec … psql` runs
            time.sleep(1)  # the signal has arrived; the lock goes, the ALTER commits
        except BaseException:
            proc.kill()
            raise
    output = finish(proc)
    settled(stack, output, proc, signum)
    name = signal.Signals(signum).name
    assert re.fullmatch(
        rf"dockwork: restore interrupted by {name}: database 'app' was not changed and "
        r"accepts connections; the scratch database 'app_restore_\d+' was dropped\.",
        the_line(output),
    ), output
    assert users(stack) == 3, "the old data, complete"


@pytest.mark.parametrize(
    ("signum", "keep_old"),
    [(signal.SIGHUP, False), (signal.SIGTERM, True)],
    ids=["SIGHUP", "SIGTERM-keep-old"],
)
def test_restore_signalled_during_the_renames_completes_the_swap(
    module_stack: Stack, dumps: dict[str, Path], signum: int, keep_old: bool
) -> None:
    stack = module_stack
    fill(stack, 3)
    proc = start(stack, "db.restore", str(dumps["small"]), "--force", *(["--keep-old"] * keep_old))
    try:
        with stack.connect() as conn:
            scratch = str(
                wait_for(
                    proc,
                    lambda: one(
                        conn, "SELECT datname FROM pg_database WHERE datname LIKE 'app_restore_%'"
                    ),
                    "the scratch database",
                )
            )
        # the renames (one transaction) wait behind the test's lock on the scratch database
        with row_locked(stack, scratch) as watch:
            wait_for(proc, lambda: waiting_on_lock(watch, "%RENAME TO%"), "the renames")
            proc.send_signal(signum)
            time.sleep(1)
    except BaseException:
        proc.kill()
        raise
    output = finish(proc)
    kept = [name for name in asides(stack) if name.startswith("app_before_restore_")]
    if keep_old:  # the documented one kept aside, accepting connections
        assert len(kept) == 1, output
        with stack.connect(kept[0]) as conn:
            assert one(conn, "SELECT count(*) FROM users") == 3
        with stack.connect() as conn:
            conn.execute(f'DROP DATABASE "{kept[0]}"')
    settled(stack, output, proc, signum)
    name = signal.Signals(signum).name
    tail = (
        r"the old one is kept as 'app_before_restore_\d+'"
        if keep_old
        else r"the old one 'app_before_restore_\d+' was dropped"
    )
    assert re.fullmatch(
        rf"dockwork: restore interrupted by {name}: the swap completed: database 'app' holds "
        rf"the restored data and accepts connections; {tail}\.",
        the_line(output),
    ), output
    assert users(stack) == 5, "the new data, complete"


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` now (the children of one that exits while they are listed
    are left out)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # it exited after its parent listed it
        return []
    found = []
    for child in children:
        found += [int(child), *descendants(int(child))]
    return found


def running(proc: subprocess.Popen[str], *words: bytes) -> int | None:
    """A process under ``proc`` whose argv has all of ``words``."""
    for pid in descendants(proc.pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if all(w in argv for w in words):
                return pid
    return None


def test_reset_signalled_while_migrating_drops_the_scratch_database(
    module_stack: Stack, dumps: dict[str, Path]
) -> None:
    stack = module_stack
    del dumps
    fill(stack, 3)
    proc = start(stack, "db.reset", "--yes")
    wait_for(proc, lambda: running(proc, b"run", b"migrate"), "the migrate service running")
    proc.send_signal(signal.SIGTERM)
    output = finish(proc)
    settled(stack, output, proc, signal.SIGTERM)
    assert re.fullmatch(
        r"dockwork: reset interrupted by SIGTERM: database 'app' was not changed and "
        r"accepts connections; the scratch database 'app_reset_\d+' was dropped\.",
        the_line(output),
    ), output
    assert users(stack) == 3


def test_reset_signalled_while_the_database_is_closed_reopens_it(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    fill(stack, 3)
    with row_locked(stack, "app") as watch:
        proc = start(stack, "db.reset", "--yes")
        try:
            wait_for(
                proc,
                lambda: waiting_on_lock(watch, "%ALLOW_CONNECTIONS false%"),
                "the swap closing the database",
            )
            proc.send_signal(signal.SIGINT)
            time.sleep(1)
        except BaseException:
            proc.kill()
            raise
    output = finish(proc)
    settled(stack, output, proc, signal.SIGINT)
    assert "dockwork: reset interrupted by SIGINT: database 'app' was not changed" in output
    assert users(stack) == 3


# -- a dump onto a filesystem without hard links --------------------------------------------


@contextlib.contextmanager
def vfat(tmp_path: Path) -> Iterator[Path]:
    """A real FAT filesystem, mounted: the kernel's vfat where it can be loop-mounted, else
    the same image through fusefat (a userspace FAT driver, FUSE). Either refuses link()."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    if shutil.which("mkfs.vfat") is None:
        pytest.skip("needs mkfs.vfat (dosfstools)")
    image, mount = tmp_path / "fat.img", tmp_path / "fat"
    mount.mkdir()
    with image.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.vfat", str(image)], check=True, capture_output=True)
    kernel = subprocess.run(
        ["mount", "-t", "vfat", "-o", "loop", str(image), str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if kernel.returncode != 0:
        if shutil.which("fusefat") is None or not Path("/dev/fuse").exists():
            pytest.skip(f"cannot mount vfat ({kernel.stderr.strip()!r}) and no fusefat")
        subprocess.run(["fusefat", "-o", "rw+", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)


def test_dump_onto_vfat_writes_and_keeps_the_dump(
    module_stack: Stack, tmp_path: Path, dumps: dict[str, Path]
) -> None:
    stack = module_stack
    del dumps
    fill(stack, 7)
    with vfat(tmp_path) as fat:
        probe = fat / "probe"
        probe.write_text("x")
        with pytest.raises(PermissionError):  # what makes it a test: no hard links here
            os.link(probe, fat / "probe2")
        probe.unlink()
        target = fat / "app.dump"
        result = stack.inv("db.dump", "--file", str(target), check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Traceback" not in output
        assert f"wrote {target} (" in result.stdout
        assert target.stat().st_size > 0
        assert sorted(p.name for p in fat.iterdir()) == ["app.dump"], "no partial file left"
        # complete: it restores every row
        fill(stack, 1)
        stack.inv("db.restore", str(target), "--force")
        assert users(stack) == 7
        # never over a file that is there: refused before dumping, the file untouched
        again = stack.inv("db.dump", "--file", str(target), check=False)
        assert again.returncode == 1
        assert "exists" in again.stderr
