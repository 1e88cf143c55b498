"""Files other local users can touch: what dockwork keeps in /dev/shm, the temp directory
and the cache is its user's alone, and what someone else made there is refused, never used.

Tests that play "another user" run a small program as that uid with the system Python
(this environment's interpreter may live in a directory other users cannot enter), with
dockwork's sources on PYTHONPATH: no third-party package is needed for these paths.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import redis

from dockwork.errors import DockworkError
from dockwork.filelock import locked
from dockwork.private import UnsafePathError, private_dir
from dockwork.testing.servers import embedded

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
VICTIM, ATTACKER = 4242, 4243
as_root = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SYSTEM_PYTHON).is_file(),
    reason="plays two other users: needs root and a system Python",
)
wheels = pytest.mark.skipif(
    embedded.missing(("postgres", "redis")) is not None,
    reason=f"needs the embedded wheels: {embedded.missing(('postgres', 'redis'))}",
)

BASE_DIR = """
import sys
from dockwork.errors import DockworkError, render
from dockwork.testing.servers import embedded
try:
    print(embedded.base_dir())
except DockworkError as exc:
    print(render(exc))
    sys.exit(exc.exit_code)
"""


def as_user(uid: int, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEM_PYTHON, "-c", textwrap.dedent(code)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "HOME": "/", **env},
        user=uid,
        group=uid,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def candidate_bases(uid: int) -> list[Path]:
    """Where the embedded backend may keep a user's data: /dev/shm, else the temp dir."""
    return [Path(p) / f"dockwork-embedded-{uid}" for p in ("/dev/shm", tempfile.gettempdir())]  # noqa: S108


@pytest.fixture
def planted() -> list[Path]:
    """Directories another user made where VICTIM's servers would keep their data."""
    made = []
    for base in candidate_bases(VICTIM):
        if base.exists() or base.is_symlink():
            pytest.skip(f"{base} exists already")
    yield made
    for path in made:
        if path.is_symlink() or path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


@as_root
def test_a_data_directory_another_user_made_is_refused_not_used(planted: list[Path]) -> None:
    for base in candidate_bases(VICTIM):
        base.mkdir(mode=0o777)
        base.chmod(0o777)  # made so the victim can write in it: the attacker keeps control
        os.chown(base, ATTACKER, ATTACKER)
        (base / "pg-template-planted").mkdir()
        planted.append(base)
    found = as_user(VICTIM, BASE_DIR)
    assert found.returncode == UnsafePathError.exit_code, found.stdout + found.stderr
    assert found.stdout.startswith("dockwork: /"), found.stdout
    assert f"owned by uid {ATTACKER}, not uid {VICTIM}" in found.stdout
    assert "Traceback" not in found.stdout + found.stderr
    for base in planted:  # left as it was: nothing written into it, nothing removed
        assert sorted(p.name for p in base.iterdir()) == ["pg-template-planted"]


@as_root
def test_a_symlink_where_the_data_directory_goes_is_refused(
    planted: list[Path], open_dir: Path
) -> None:
    target = open_dir / "elsewhere"
    target.mkdir()
    os.chown(target, VICTIM, VICTIM)  # even a directory the victim owns: not through a link
    for base in candidate_bases(VICTIM):
        base.symlink_to(target)
        planted.append(base)
    found = as_user(VICTIM, BASE_DIR)
    assert found.returncode == UnsafePathError.exit_code, found.stdout + found.stderr
    assert "is a symbolic link" in found.stdout
    assert list(target.iterdir()) == []


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's own tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="dockwork-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@as_root
def test_a_cache_another_user_made_is_refused(open_dir: Path) -> None:
    tmp_path = open_dir
    tmp_path.chmod(0o777)
    shared = tmp_path / "dockwork"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    os.chown(shared, ATTACKER, ATTACKER)
    code = """
    import sys
    from dockwork.errors import DockworkError, render
    from dockwork.testing.servers import embedded
    try:
        embedded.state_dir("victim")
    except DockworkError as exc:
        print(render(exc))
        sys.exit(exc.exit_code)
    """
    found = as_user(VICTIM, code, XDG_CACHE_HOME=str(tmp_path))
    assert found.returncode == UnsafePathError.exit_code, found.stdout + found.stderr
    assert str(shared) in found.stdout
    assert list(shared.iterdir()) == []


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o700)
    target = tmp_path / "somebody-elses-file"
    lock = tmp_path / "x.lock"
    lock.symlink_to(target)
    with pytest.raises(UnsafePathError, match="symbolic link"), locked(lock):
        pass
    assert not target.exists()


def test_directories_dockwork_makes_are_private_and_looser_ones_of_ours_tightened(
    tmp_path: Path,
) -> None:
    made = private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    private_dir(old)
    assert stat.S_IMODE(old.stat().st_mode) == 0o700
    writable = tmp_path / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    with pytest.raises(UnsafePathError, match="writable by other users"):
        private_dir(writable)


@wheels
def test_the_template_keeps_its_password_whatever_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs with different caches (XDG_CACHE_HOME) share one template: each one's
    servers still accept its password."""
    project = f"dwpriv{uuid.uuid4().hex[:8]}"
    for cache in ("a", "b", "a", "b"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / cache))
        backend = EmbeddedBackendFor(project)
        try:
            servers = backend.start()
            assert servers.database_url is not None
            with psycopg.connect(servers.database_url, connect_timeout=10) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            backend.stop()


def EmbeddedBackendFor(project: str) -> embedded.EmbeddedBackend:  # noqa: N802
    return embedded.EmbeddedBackend(project, ("postgres", "redis"), service_timeout=60)


@wheels
def test_what_a_run_keeps_is_its_own_and_redis_does_not_run_as_root() -> None:
    project = f"dwpriv{uuid.uuid4().hex[:8]}"
    backend = EmbeddedBackendFor(project)
    servers = backend.start()
    try:
        assert servers.redis_url is not None
        assert redis.Redis.from_url(servers.redis_url).ping()
        base = embedded.base_dir()
        expected = 0o711 if os.geteuid() == 0 else 0o700
        assert stat.S_IMODE(base.stat().st_mode) == expected
        assert base.stat().st_uid == os.geteuid()
        run_dir = Path(servers.details["dir"])
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert run_dir.stat().st_uid == embedded.server_uid()
        for template in base.glob("pg-template-*"):
            if (template / "password").is_file():
                assert stat.S_IMODE(template.stat().st_mode) == 0o700
                assert stat.S_IMODE((template / "password").stat().st_mode) == 0o600
        for kind in ("postgres", "redis"):
            pid = int(servers.details[f"{kind}_pid"])
            uids = next(
                line
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("Uid:")
            )
            assert int(uids.split()[1]) == embedded.server_uid(), (kind, uids)
    finally:
        backend.stop()


def test_a_postgres_that_cannot_run_here_is_one_message(tmp_path: Path) -> None:
    """A wheel built for another libc, or on a noexec mount: a dockwork error, no traceback."""
    (tmp_path / "postgres").write_bytes(b"\x7fELF not really a binary")
    (tmp_path / "postgres").chmod(0o755)
    with pytest.raises(DockworkError, match="cannot run on this machine"):
        embedded.postgres_version(tmp_path)


@wheels
@pytest.mark.skipif(os.geteuid() != 0, reason="an older dockwork's layout under root")
def test_a_template_an_older_dockwork_made_is_rebuilt_not_refused() -> None:
    """Older versions left the template owned by the servers' user, its password in the
    cache: inside our own base directory that is ours, so it is rebuilt aside and swapped."""
    wheel = embedded.postgres_bin()
    assert wheel is not None
    binaries = embedded._usable_binaries(wheel)
    home = embedded.postgres_template(binaries).data.parent
    (home / "password").unlink()
    os.chown(home, embedded.UNPRIVILEGED, embedded.UNPRIVILEGED)
    home.chmod(0o755)
    backend = EmbeddedBackendFor(f"dwpriv{uuid.uuid4().hex[:8]}")
    try:
        servers = backend.start()
        assert servers.database_url is not None
        with psycopg.connect(servers.database_url, connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        backend.stop()
    assert home.stat().st_uid == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / "password").is_file()
