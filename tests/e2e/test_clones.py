"""Two checkouts of the project running `nox -s tests` at the same moment on one engine (two
CI jobs on one runner): both pass, and neither leaves anything behind."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import copy_checkout
from tests.helpers import env_without_services, gone, needs_docker

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.clones, pytest.mark.docker]


def snapshot(root: Path) -> None:
    """Make the copy a git checkout of its own, as a clone is (the tests copy checkouts)."""
    git = ["git", "-c", "user.name=dockwork", "-c", "user.email=dockwork@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)


def test_two_clones_run_the_tests_session_at_once(tmp_path: Path) -> None:
    needs_docker()
    clones = []
    for name in ("clone-a", "clone-b"):
        root = tmp_path / name
        root.mkdir()
        copy_checkout(root)
        snapshot(root)
        clones.append(root)
    env = {k: v for k, v in env_without_services().items() if not k.startswith("NOX")}
    t0 = time.monotonic()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", "tests"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for root in clones
    ]
    outputs = [r.communicate(timeout=1800)[0] for r in runs]
    took = time.monotonic() - t0
    for root, run, output in zip(clones, runs, outputs, strict=True):
        tail = "\n".join(output.splitlines()[-40:])
        assert run.returncode == 0, f"{root.name} failed:\n{tail}"
        assert "Session tests was successful" in output
        assert gone(root.name), f"{root.name} left containers behind"
    print(f"two concurrent `nox -s tests`: both passed in {took:.0f} s")  # noqa: T201 - a figure
