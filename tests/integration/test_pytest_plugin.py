"""dockwork's pytest plugin on small projects of its own: isolation, safety, failures.

Each test makes a project with a name of its own, so counting "containers of the
project" counts only what this test's runs created, whoever else shares the engine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from typing import TYPE_CHECKING

import pytest
import redis

from dockwork.testing.servers.docker import LABEL
from tests.helpers import (
    default_signals,
    docker_backend,
    env_without_services,
    gone,
    needs_docker,
    relay,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.docker

PYPROJECT = """
[project]
name = "plugin-probe"
version = "0"

[tool.dockwork]
migrate_command = ["python", "migrate.py"]
template_inputs = ["migrate.py"]
test_services = ["postgres", "redis"]
"""

MIGRATE = """
import os, sys, psycopg
if os.environ.get("BREAK_MIGRATION"):
    sys.exit("migration exploded on purpose")
with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE items (worker text NOT NULL)")
"""

TESTS = """
import os, uuid
import psycopg, pytest, redis

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

@pytest.mark.parametrize("n", range(8))
def test_isolated(n, dockwork_database_url, dockwork_redis_url):
    with psycopg.connect(dockwork_database_url) as conn:
        conn.execute("INSERT INTO items VALUES (%s)", (WORKER,))
        others = conn.execute("SELECT count(*) FROM items WHERE worker <> %s", (WORKER,)).fetchone()
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert others == (0,), "another worker's rows are visible"
    assert name.endswith(WORKER.replace("-", "_")), name
    r = redis.Redis.from_url(dockwork_redis_url)
    r.set(f"{WORKER}:{uuid.uuid4()}", 1)
    mine = [k for k in r.keys("*") if not k.startswith(b"dockwork:")]
    assert all(k.decode().startswith(WORKER + ":") for k in mine), "shared Redis db"
"""

REDIS_ONLY = """
import redis

def test_redis(dockwork_redis_url):
    assert redis.Redis.from_url(dockwork_redis_url).ping()
"""

NO_SERVERS = """
def test_plain():
    assert 1 + 1 == 2
"""


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / f"probe{uuid.uuid4().hex[:8]}"  # the project name: this test's own
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "migrate.py").write_text(textwrap.dedent(MIGRATE))
    (root / "test_probe.py").write_text(textwrap.dedent(TESTS))
    return root


def run_pytest(root: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = env_without_services()
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def leftovers(root: Path) -> str:
    """Containers of the probe project (its name is unique to one test)."""
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}.project={root.name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Path]:
    needs_docker()
    root = make_project(tmp_path)
    yield root
    ids = leftovers(root).split()
    if ids:  # a failed test's leftovers, not another run's
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, check=False)


def test_each_xdist_worker_gets_its_own_database_and_redis(probe: Path) -> None:
    result = run_pytest(probe, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout
    assert gone(probe.name), "the run removed its containers"


def test_without_xdist_servers_start_lazily_and_go_away(probe: Path) -> None:
    result = run_pytest(probe, "-k", "test_isolated and 0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert gone(probe.name)


def test_tests_without_servers_need_no_engine_even_under_xdist(probe: Path) -> None:
    (probe / "test_probe.py").write_text(NO_SERVERS)
    nowhere = f"unix://{probe}/no-engine.sock"
    for args in ((), ("-n", "2")):
        result = run_pytest(probe, *args, DOCKER_HOST=nowhere)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout


def test_failing_migration_is_one_clear_error(probe: Path) -> None:
    result = run_pytest(probe, "-x", BREAK_MIGRATION="1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "migrating the test template with `python migrate.py` failed" in output
    assert "migration exploded on purpose" in output
    assert "Traceback" not in output
    assert gone(probe.name)


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_unreachable_external_servers_are_one_message(probe: Path, xdist: tuple[str, ...]) -> None:
    result = run_pytest(
        probe,
        *xdist,
        DOCKWORK_TEST_DATABASE_URL="postgresql://u:s3cret@127.0.0.1:1/x",
        DOCKWORK_TEST_REDIS_URL="redis://:s3cret@127.0.0.1:1/0",
        DOCKWORK_SERVICE_TIMEOUT="2",  # the deadline is the setting's, as for every server
    )
    output = result.stdout + result.stderr
    assert result.returncode not in {0, 1}, output  # not a test failure: a setup error
    assert "dockwork: the test postgres server named by DOCKWORK_TEST_DATABASE_URL" in output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert "s3cret" not in output, "passwords are masked wherever a URL is printed"
    assert leftovers(probe) == "", "nothing was started for servers the user named"


@pytest.fixture
def app_redis() -> Iterator[redis.Redis]:
    """A Redis standing in for the app's own, with data in db 0 and db 1."""
    needs_docker()
    backend = docker_backend(f"appredis{uuid.uuid4().hex[:6]}", kinds=("redis",))
    servers = backend.start()
    assert servers.redis_url is not None
    client = redis.Redis.from_url(servers.redis_url)
    for db in (0, 1):
        client.execute_command("SELECT", db)
        client.set(f"precious-{db}", "user data")
    client.execute_command("SELECT", 0)
    client.connection_pool.disconnect()
    try:
        yield client
    finally:
        client.close()
        backend.stop()


def precious(client: redis.Redis) -> dict[int, bytes | None]:
    out = {}
    for db in (0, 1):
        c = redis.Redis.from_url(_url(client, db))
        out[db] = c.get(f"precious-{db}")
        c.close()
    return out


def _url(client: redis.Redis, db: int) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://:{kw['password']}@{kw['host']}:{kw['port']}/{db}"


def test_the_apps_own_urls_never_select_a_server(probe: Path, app_redis: redis.Redis) -> None:
    app_url = _url(app_redis, 0)
    result = run_pytest(
        probe,
        "-n",
        "2",
        DATABASE_URL="postgresql://app:secret@127.0.0.1:1/app",
        REDIS_URL=app_url + "?db=0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert precious(app_redis) == {0: b"user data", 1: b"user data"}
    assert app_redis.connection_pool.connection_kwargs["port"] != 1


def test_a_named_redis_with_foreign_keys_is_refused_never_flushed(
    probe: Path, app_redis: redis.Redis
) -> None:
    (probe / "test_probe.py").write_text(REDIS_ONLY)
    # named in dockwork's own setting, with ?db=0 (redis-py would prefer it over the path)
    result = run_pytest(
        probe,
        DOCKWORK_TEST_REDIS_URL=_url(app_redis, 5) + "?db=0",
        DOCKWORK_TEST_SERVICES="redis",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Redis database 1 on redis://:***@" in output
    assert "dockwork did not write; it is never flushed" in output
    assert "Traceback" not in output
    assert precious(app_redis) == {0: b"user data", 1: b"user data"}


SLOW = """
import pathlib, time

def test_slow(dockwork_servers):
    pathlib.Path("started").write_text(dockwork_servers.database_url)
    deadline = time.monotonic() + 120
    while not pathlib.Path("go").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
"""


def _start_slow(probe: Path, **env: str) -> subprocess.Popen[str]:
    (probe / "test_probe.py").unlink()
    (probe / "test_slow.py").write_text(textwrap.dedent(SLOW))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=probe,
        env={**env_without_services(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_signals,  # noqa: PLW1509 - signalled as CI would
    )


def _wait_started(probe: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not (probe / "started").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the test never started"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_mid_run_still_tears_down(probe: Path, signum: int) -> None:
    proc = _start_slow(probe)
    try:
        _wait_started(probe, proc)
        assert leftovers(probe) != "", "the servers are up while the test runs"
        proc.send_signal(signum)  # a cancelled CI job, a closed terminal
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert gone(probe.name), f"the signal skipped teardown:\n{output}"


def test_engine_gone_mid_run_is_one_message_and_the_next_run_cleans_up(probe: Path) -> None:
    sock = str(probe / "engine.sock")
    with relay(sock, "/var/run/docker.sock") as engine:
        proc = _start_slow(probe, DOCKER_HOST=f"unix://{sock}")
        try:
            _wait_started(probe, proc)
            engine.close()  # the engine stops answering while the run is in its test
            (probe / "go").touch()  # the test passes; the teardown cannot reach the engine
            output = proc.communicate(timeout=120)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "1 passed" in output
    assert proc.returncode == 3, "a run that could not clean up does not pass"
    assert "dockwork: could not remove the test containers" in output
    assert output.count("dockwork: ") == 1, output
    assert "Traceback" not in output
    assert leftovers(probe) != "", "what could not be removed is still there"
    # the engine is back: the next run of the project reaps them
    (probe / "test_slow.py").unlink()
    (probe / "test_probe.py").write_text(textwrap.dedent(TESTS))
    result = run_pytest(probe, "-k", "test_isolated and 0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert gone(probe.name)


def test_a_conftest_failing_to_import_leaves_no_server_behind(probe: Path, tmp_path: Path) -> None:
    """With ``test_env`` the servers start before any conftest is imported; a conftest that
    then fails to import ends pytest before its session does (no sessionfinish, no
    unconfigure), and what the run started must still go."""
    pyproject = probe / "pyproject.toml"
    test_env = '\n[tool.dockwork.test_env]\nDATABASE_URL = "{postgres.url}"\n'
    pyproject.write_text(PYPROJECT + test_env)
    (probe / "conftest.py").write_text('raise ImportError("the conftest is broken on purpose")\n')
    tmp = tmp_path / "tmp"  # where the run keeps its directory (mkdtemp honours TMPDIR)
    tmp.mkdir()
    result = run_pytest(probe, TMPDIR=str(tmp))
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "broken on purpose" in output
    assert gone(probe.name), "the run's test containers are removed"
    assert not list(tmp.glob("dockwork-run-*")), "the run's directory is removed"
