"""`inv --list` stays off the heavy imports: no Docker SDK, SQLAlchemy, Litestar or app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("docker", "sqlalchemy", "litestar", "app", "psycopg", "redis", "saq")


def test_listing_tasks_imports_nothing_heavy() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['inv', '--list']\n"
        "from invoke.main import program\n"
        "try:\n"
        "    program.run(exit=False)\n"
        "finally:\n"
        f"    heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "    print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "db.revision" in result.stdout, "the listing ran"
    assert result.stdout.strip().splitlines()[-1] == "HEAVY=", result.stdout
