"""`nox -s migrations` for real, in a throwaway copy: it must fail on a missing migration.

That it passes on this checkout is the default `migrations` session itself (the same
session, the same code): here only the failure, which no default session can show.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import copy_checkout
from tests.helpers import env_without_services, needs_docker

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.docker


def run_session(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", "-s", "migrations"],
        cwd=root,
        env=env_without_services(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_migrations_session_fails_on_a_model_change_without_migration(
    tmp_path: Path,
) -> None:
    needs_docker()
    copy_checkout(tmp_path)
    models = tmp_path / "src/app/db/models.py"
    anchor = "    name: Mapped[str] = mapped_column(String(200))\n"
    models.write_text(
        models.read_text().replace(
            anchor, anchor + "    phone: Mapped[str | None] = mapped_column(String(40))\n"
        )
    )
    drift = run_session(tmp_path)
    output = drift.stdout + drift.stderr
    assert drift.returncode != 0
    assert "phone" in output, "the drift check names what differs"
    assert "Session migrations failed" in output
