"""A run's directory outlives a run killed before it could end it: the next run removes it,
and only it (this user's own, of an owner judged gone, never through a symlink)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dockwork.testing.servers.ownership import Owner, process_start_time
from dockwork.testing.servers.testrun import OWNER, PREFIX, reap_directories

if TYPE_CHECKING:
    from pathlib import Path


def run_directory(parent: Path, name: str, owner: Owner | None) -> Path:
    path = parent / f"{PREFIX}{name}"
    path.mkdir(mode=0o700)
    (path / "servers.json").write_text("{}")
    if owner is not None:
        record = {"id": "x", "owner": dataclasses.asdict(owner)}
        (path / OWNER).write_text(json.dumps(record))
    return path


def dead_owner() -> Owner:
    """The owner record of a process that really ran and exited."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    start = process_start_time(child.pid)
    child.communicate(b"")
    return dataclasses.replace(Owner.current(), pid=child.pid, start=start)


def test_only_the_directories_of_gone_runs_of_this_user_are_removed(tmp_path: Path) -> None:
    me = Owner.current()
    dead = run_directory(tmp_path, "dead", dead_owner())
    live = run_directory(tmp_path, "live", me)
    # another machine's or another container's run: its pid means nothing here
    elsewhere = run_directory(tmp_path, "elsewhere", dataclasses.replace(me, boot="other"))
    beginning = run_directory(tmp_path, "beginning", None)  # owner not written yet
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()
    # a symlink in the shared directory is never followed, whatever it points at
    target = run_directory(tmp_path / "..", f"target-{os.getpid()}", dead_owner())
    link = tmp_path / f"{PREFIX}link"
    link.symlink_to(target)
    try:
        assert reap_directories(tmp_path) == [dead]
        assert not dead.exists()
        for kept in (live, elsewhere, beginning, unrelated, target):
            assert kept.is_dir(), kept
        assert link.is_symlink()
    finally:
        for leftover in target.iterdir():
            leftover.unlink()
        target.rmdir()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_another_users_run_directory_is_left_alone(tmp_path: Path) -> None:
    theirs = run_directory(tmp_path, "theirs", dead_owner())
    os.chown(theirs, 4242, 4242)
    assert reap_directories(tmp_path) == []
    assert theirs.is_dir()
