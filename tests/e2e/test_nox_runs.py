"""Two `nox` runs in one checkout at once do not collide: the second keeps its session
environments in a directory of its own, says so, and removes it at its end."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import copy_checkout
from tests.helpers import env_without_services

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


def test_two_nox_runs_in_one_checkout_do_not_collide(tmp_path: Path) -> None:
    copy_checkout(tmp_path)
    env = {k: v for k, v in env_without_services().items() if not k.startswith("NOX")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nox", "-s", "lint"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "Session lint was successful" in output
    assert sum("is in use by another nox run" in o for o in outputs) == 1, "the second says so"
    assert [p.name for p in (tmp_path / ".nox").iterdir() if p.name.startswith("run-")] == [], (
        "the second run's own environments are removed at its end"
    )
