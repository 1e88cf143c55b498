"""The plugin's edges: what goes wrong outside a test's own code is one `dockwork:` line,
never a traceback, and the run fails."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest

from dockwork.testing.servers import embedded
from tests.helpers import env_without_services, probe_project

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        embedded.missing(("postgres", "redis")) is not None, reason="needs the embedded wheels"
    ),
]

MIGRATE = "print('nothing to migrate')\n"
#: the servers go away while the run holds a database on each (as a crash would)
TESTS = """
import os, signal, time
from pathlib import Path

def test_servers_go_away(dockwork_servers, dockwork_database_url, dockwork_redis_url):
    for kind in ("postgres", "redis"):
        pid = int(dockwork_servers.details[f"{kind}_pid"])
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)

def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
"""


def probe(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    project = f"dwedge{uuid.uuid4().hex[:8]}"
    files = {"migrate.py": MIGRATE, "test_probe.py": TESTS}
    probe_project(tmp, project, files, extra='test_backend = "embedded"\n')
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp,
        env={**env_without_services(), "DOCKER_HOST": "unix:///nonexistent.sock", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_teardown_on_servers_that_are_gone_is_one_line_each(tmp_path: Path) -> None:
    result = probe(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "Traceback" not in out, out
    assert "dockwork: dropping the test database" in out, out
    assert "dockwork: releasing a Redis test database failed" in out, out
    assert "1 passed, 1 error" in out, out  # the test passed; one error: its teardown's


def test_a_backend_failing_on_the_filesystem_is_one_line(tmp_path: Path) -> None:
    """An OS error deep inside a backend (here: the cache is a file, not a directory)."""
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    work = tmp_path / "work"
    work.mkdir()
    result = probe(work, XDG_CACHE_HOME=str(blocker))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "Traceback" not in out, out
    assert "dockwork: starting the test servers failed: " in out, out
