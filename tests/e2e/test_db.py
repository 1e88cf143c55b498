"""`inv db.*` against the stack's real PostgreSQL, in a copy of the checkout."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

MODELS = Path("src/app/db/models.py")
VERSIONS = Path("src/app/db/migrations/versions")
NEW_COLUMN = "    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)\n"
# What a test sets up or looks at goes over its own connection (Stack.sql), not through
# `inv db.psql`: that task itself is proven in test_quality and test_migrations.


def add_user_column(stack: Stack, line: str) -> None:
    models = stack.root / MODELS
    text = models.read_text()
    anchor = "    name: Mapped[str] = mapped_column(String(200))\n"
    models.write_text(text.replace(anchor, anchor + line, 1))


def test_revision_lands_owned_by_host_user_and_upgrade_applies_it(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    before = set((stack.root / VERSIONS).glob("*.py"))

    empty = stack.inv("db.revision", "-m", "nothing changed")
    assert "nothing was written" in empty.stdout
    assert set((stack.root / VERSIONS).glob("*.py")) == before

    add_user_column(stack, NEW_COLUMN)
    result = stack.inv("db.revision", "-m", "add users phone")
    match = re.search(r"new migration: (\S+\.py)", result.stdout)
    assert match, result.stdout
    new_file = stack.root / match.group(1)
    assert set((stack.root / VERSIONS).glob("*.py")) == {*before, new_file}
    assert new_file.stat().st_uid == os.getuid(), "written as the host user, not root"
    assert "add_column" in new_file.read_text()

    drift = stack.inv("db.check", check=False)
    assert drift.returncode != 0, "the database is behind the new migration"
    stack.inv("db.upgrade")
    assert (
        stack.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'users' AND column_name = 'phone'",
        )
        == "phone"
    )
    stack.inv("db.check")

    # a model change without a migration: check fails and names what differs
    add_user_column(stack, "    nickname: Mapped[str | None] = mapped_column(String(40))\n")
    missing = stack.inv("db.check", check=False)
    assert missing.returncode != 0
    assert "nickname" in missing.stdout + missing.stderr

    # leave the module's stack as found: migration reverted, files back
    stack.inv("db.downgrade", "-1")
    new_file.unlink()
    (stack.root / MODELS).write_text(
        (stack.root / MODELS)
        .read_text()
        .replace(NEW_COLUMN, "")
        .replace("    nickname: Mapped[str | None] = mapped_column(String(40))\n", "")
    )
    stack.inv("db.check")


BROKEN = '''"""half a migration"""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT * FROM no_such_table")


def downgrade() -> None:
    op.drop_table("half_done")
'''


def test_failing_migration_leaves_schema_unchanged_and_app_down(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    broken = stack.root / VERSIONS / "9999_broken.py"
    broken.write_text(BROKEN)
    try:
        result = stack.inv("migrate", check=False)
        assert result.returncode != 0
        assert "no_such_table" in result.stdout + result.stderr, "the database's error is shown"
        assert "half_done" not in stack.sql("SELECT tablename FROM pg_tables")
        assert "0002" in stack.inv("db.current").stdout

        up = stack.inv("up", check=False)
        assert up.returncode != 0
        assert "migrate" in up.stdout + up.stderr
        states = stack.states()
        assert states["migrate"]["ExitCode"] != 0
        assert states.get("app", {}).get("State") != "running", "no app on a half-migrated db"
    finally:
        broken.unlink()
        stack.inv("down")


def count_users(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM users"))


def test_dump_reset_restore_keeps_every_row(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    stack.sql("DELETE FROM users")
    stack.sql("INSERT INTO users (email, name) VALUES ('a@x.test', 'A'), ('b@x.test', 'B')")
    assert count_users(stack) == 2

    refused = stack.inv("db.reset", check=False)
    assert refused.returncode != 0
    assert "would drop database 'app'" in refused.stderr
    assert count_users(stack) == 2, "reset without --yes changes nothing"

    stack.inv("db.dump", "--file", "backup.dump")
    dump = stack.root / "backup.dump"
    assert dump.stat().st_size > 0
    assert dump.stat().st_uid == os.getuid()

    stack.inv("db.reset", "--yes")
    assert count_users(stack) == 0
    assert "0002" in stack.inv("db.current").stdout, "reset migrates the new database"

    refused = stack.inv("db.restore", "backup.dump", check=False)
    assert refused.returncode != 0
    assert "table(s)" in refused.stderr
    stack.inv("db.restore", "backup.dump", "--force")
    assert count_users(stack) == 2
    emails = stack.sql("SELECT email FROM users ORDER BY email")
    assert "a@x.test" in emails
    assert "b@x.test" in emails


def databases(stack: Stack) -> str:
    return stack.sql("SELECT datname FROM pg_database ORDER BY datname")


def test_restore_refuses_what_it_cannot_restore_and_changes_nothing(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    stack.sql("DELETE FROM users")
    stack.sql("INSERT INTO users (email, name) VALUES ('a@x.test', 'A'), ('b@x.test', 'B')")

    # not a dump at all: refused before anything is touched
    plain = stack.root / "not-a-dump.sql"
    plain.write_text("select 1;\n")
    refused = stack.inv("db.restore", str(plain), "--force", check=False)
    assert refused.returncode != 0
    assert "is not a dump pg_restore can read" in refused.stderr
    assert "Database 'app' was not changed" in refused.stderr
    assert count_users(stack) == 2

    # a real dump cut in half: readable, but its restore fails (aside, in a scratch db)
    stack.inv("db.dump", "--file", "whole.dump")
    whole = (stack.root / "whole.dump").read_bytes()
    (stack.root / "half.dump").write_bytes(whole[: len(whole) // 2])
    broken = stack.inv("db.restore", "half.dump", "--force", check=False)
    assert broken.returncode != 0
    assert "was not changed" in broken.stderr
    assert count_users(stack) == 2
    assert "_restore_" not in databases(stack), "the scratch database is removed"


def test_restore_swaps_and_keeps_the_old_one_when_asked(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    stack.sql("DELETE FROM users")
    stack.sql("INSERT INTO users (email, name) VALUES ('a@x.test', 'A'), ('b@x.test', 'B')")
    # a ':' in the path is a file name, not `service:path`
    stack.inv("db.dump", "--file", "backup:1.dump")
    assert (stack.root / "backup:1.dump").stat().st_size > 0
    assert not list(stack.root.glob(".backup*partial*")), "no half-written file is left"
    stack.sql("INSERT INTO users (email, name) VALUES ('c@x.test', 'C')")

    stack.inv("db.restore", "backup:1.dump", "--force", "--keep-old")
    assert count_users(stack) == 2, "the dump's rows, not the later ones"
    kept = [n for n in databases(stack).splitlines() if "app_before_restore_" in n]
    assert len(kept) == 1, databases(stack)
    on_kept = ["exec", "-T", "db", "psql", "-U", "app", "-d", kept[0], "-tAc"]
    assert stack.compose(*on_kept, "SELECT count(*) FROM users").stdout.strip() == "3"
    stack.sql(f'DROP DATABASE "{kept[0]}"', database="postgres")

    # without --keep-old the replaced database is dropped last
    stack.inv("db.restore", "backup:1.dump", "--force")
    assert "app_before_restore_" not in databases(stack)
    assert count_users(stack) == 2


def test_down_volumes_names_the_data_and_needs_yes(module_stack: Stack) -> None:
    stack = module_stack
    stack.inv("migrate")
    refused = stack.inv("down", "--volumes", check=False)
    assert refused.returncode == 1
    assert f"{stack.name}_db-data" in refused.stderr
    assert "--volumes --yes" in refused.stderr
    assert stack.containers(), "nothing was stopped or deleted"
