"""The quality loop in the dev container, in a copy of the checkout with its own stack."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def test_lint_fails_on_a_lint_error_and_passes_on_clean_code(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("lint")
    bad = stack.root / "src" / "app" / "lint_probe.py"
    bad.write_text('"""Probe."""\n\nimport os\n')
    try:
        result = stack.inv("lint", check=False)
        assert result.returncode != 0
        assert "F401" in result.stdout + result.stderr, "ruff names the unused import"
    finally:
        bad.unlink()
    stack.inv("lint")


def test_format_fixes_a_file_and_it_stays_the_host_users(module_stack: Stack) -> None:
    stack = module_stack
    ugly = stack.root / "src" / "app" / "format_probe.py"
    ugly.write_text('"""Probe."""\n\nVALUES = [1,2 ,   3]\n')
    try:
        stack.inv("format")
        assert ugly.read_text() == '"""Probe."""\n\nVALUES = [1, 2, 3]\n'
        assert ugly.stat().st_uid == os.getuid()
        assert ugly.stat().st_gid == os.getgid()
    finally:
        ugly.unlink()


def user_rows(stack: Stack) -> str:
    out = stack.inv("db.psql", "-c", "SELECT email, name FROM users ORDER BY id").stdout
    return out[out.index("email") :]


def test_inv_test_runs_in_the_container_and_leaves_dev_data_alone(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    stack.inv(
        "db.psql",
        "-c",
        "INSERT INTO users (email, name) VALUES ('dev@x.test', 'Dev') ON CONFLICT DO NOTHING",
    )
    before = user_rows(stack)
    assert "dev@x.test" in before

    passed = stack.inv(
        "test", "--", "tests/integration/test_users.py", "-k", "duplicate or unknown"
    )
    assert re.search(r"2 passed", passed.stdout), passed.stdout
    assert "pytest runs in the 'app' container" in passed.stdout + passed.stderr

    failing = stack.root / "tests" / "integration" / "test_failing_probe.py"
    failing.write_text("def test_fails() -> None:\n    assert 1 == 2\n")
    try:
        failed = stack.inv("test", "--", "tests/integration/test_failing_probe.py", check=False)
    finally:
        failing.unlink()
    assert failed.returncode == 1, "inv test exits with pytest's code"
    assert "1 failed" in failed.stdout

    assert user_rows(stack) == before, "the dev database is untouched by inv test"
    databases = stack.inv("db.psql", "-c", "SELECT datname FROM pg_database").stdout
    assert not re.search(r"dw_\d+_", databases), "per-run test databases are dropped afterwards"
