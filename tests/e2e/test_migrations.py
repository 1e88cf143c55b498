"""`inv db.*` with the migrations where Compose puts them and with another migration CLI:
a revision written in a container without the project bind-mounted lands on this machine,
and a CLI of another shape (configured as migration_tool = "custom") drives the tasks."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

MODELS = Path("src/app/db/models.py")
VERSIONS = Path("src/app/db/migrations/versions")
NEW_COLUMN = "    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)\n"
#: the dev stack without the checkout mounted into migrate: it runs on the image's copy
NO_MOUNT = """\
services:
  migrate:
    volumes: !reset []
"""


def sql(stack: Stack, query: str) -> str:
    return stack.inv("db.psql", "-c", query).stdout


def new_migration(output: str) -> str:
    match = re.search(r"new migration: (\S+)", output)
    assert match, output
    return match.group(1)


def revision_containers(stack: Stack) -> list[str]:
    """Containers db.revision keeps while it looks inside (it removes them)."""
    argv = ["docker", "ps", "--all", "--quiet", "--filter", f"name={stack.name}-migrate-revision-"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def test_revision_without_a_bind_mount_lands_on_this_machine(module_stack: Stack) -> None:
    stack = module_stack
    (stack.root / "compose.nomount.yaml").write_text(NO_MOUNT)
    files = f"{stack.env['DOCKWORK_COMPOSE_FILES']} compose.nomount.yaml"
    unmounted = dataclasses.replace(stack, env={**stack.env, "DOCKWORK_COMPOSE_FILES": files})
    unmounted.inv("migrate")  # (also creates .env, which `compose config` needs)
    resolved = json.loads(unmounted.compose("config", "--format", "json").stdout)
    assert not resolved["services"]["migrate"].get("volumes"), "migrate mounts nothing"
    versions = stack.root / VERSIONS
    before = set(versions.iterdir())

    # the image's models match its migrations: nothing is written, nothing is left behind
    same = unmounted.inv("db.revision", "-m", "nothing changed")
    assert "nothing was written" in same.stdout
    assert set(versions.iterdir()) == before

    result = unmounted.inv("db.revision", "-m", "from the image", "--empty")
    assert "Generating /app/src/app/db/migrations/versions/" in result.stdout, "in the container"
    shown = new_migration(result.stdout)
    new_file = stack.root / shown
    try:
        assert set(versions.iterdir()) == {*before, new_file}, "the host path is printed"
        assert new_file.stat().st_uid == os.getuid(), "copied out as the host user"
        text = new_file.read_text()
        assert "from the image" in text
        assert re.search(r"^down_revision[^=]*= [\"']0002[\"']$", text, re.MULTILINE), text
        assert not revision_containers(stack), "the kept container is removed"

        # a real revision: the mounted stack (the checkout in the container) applies it
        revision_id = re.search(r"^revision[^=]*= [\"'](\w+)[\"']$", text, re.MULTILINE)
        assert revision_id, text
        stack.inv("db.upgrade")
        assert revision_id.group(1) in stack.inv("db.current").stdout
        stack.inv("db.downgrade", "-1")
    finally:
        new_file.unlink(missing_ok=True)
        (stack.root / "compose.nomount.yaml").unlink()


FAKEMIG = '''\
"""A migration CLI of another shape: apply --to REV, back --to REV, new TITLE [--auto]."""

import argparse
import contextlib
import io

from app.db.__main__ import main as alembic

parser = argparse.ArgumentParser(prog="fakemig")
verbs = parser.add_subparsers(dest="verb", required=True)
verbs.add_parser("apply").add_argument("--to", required=True)
verbs.add_parser("back").add_argument("--to", required=True)
new = verbs.add_parser("new")
new.add_argument("title")
new.add_argument("--auto", action="store_true")
args = parser.parse_args()
if args.verb == "apply":
    alembic(["upgrade", args.to])
elif args.verb == "back":
    alembic(["downgrade", args.to])
else:
    with contextlib.redirect_stdout(io.StringIO()):  # its own words, never alembic's path
        alembic(["revision", "-m", args.title, *(["--autogenerate"] if args.auto else [])])
    print("fakemig: created a migration")
'''

CUSTOM = """\
migration_tool = "custom"
migrate_command = ["python", "fakemig.py", "apply", "--to", "head"]
migration_upgrade = ["python", "fakemig.py", "apply", "--to", "{revision}"]
migration_downgrade = ["python", "fakemig.py", "back", "--to", "{revision}"]
migration_revision = ["python", "fakemig.py", "new", "{message}", "--auto"]
migration_empty_revision = ["python", "fakemig.py", "new", "{message}"]
migration_check = []
"""


def test_a_custom_migration_cli_drives_the_tasks(module_stack: Stack) -> None:
    stack = module_stack
    pyproject = stack.root / "pyproject.toml"
    models = stack.root / MODELS
    original = pyproject.read_text(), models.read_text()
    alembic_lines = (
        'migrate_command = ["python", "-m", "app.db", "upgrade", "head"]\n'
        'alembic_command = ["python", "-m", "app.db"]\n'
    )
    assert alembic_lines in original[0]
    (stack.root / "fakemig.py").write_text(FAKEMIG)
    pyproject.write_text(original[0].replace(alembic_lines, CUSTOM))
    versions = stack.root / VERSIONS
    before = set(versions.iterdir())
    try:
        migrated = stack.inv("migrate")
        assert "fakemig.py apply --to head" in migrated.stdout, "the command is echoed"

        models.write_text(
            original[1].replace(
                "    name: Mapped[str] = mapped_column(String(200))\n",
                "    name: Mapped[str] = mapped_column(String(200))\n" + NEW_COLUMN,
                1,
            )
        )
        made = stack.inv("db.revision", "-m", "add users phone")
        assert "fakemig: created a migration" in made.stdout
        assert "Generating" not in made.stdout, "found without the tool naming the file"
        new_file = stack.root / new_migration(made.stdout)
        assert set(versions.iterdir()) == {*before, new_file}
        assert "add_column" in new_file.read_text()

        up = stack.inv("db.upgrade")
        assert "fakemig.py apply --to head" in up.stdout
        phone = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'users' AND column_name = 'phone'"
        )
        assert "(1 row)" in sql(stack, phone)
        down = stack.inv("db.downgrade", "-1")
        assert "fakemig.py back --to -1" in down.stdout
        assert "(0 rows)" in sql(stack, phone)

        check = stack.inv("db.check", check=False)
        assert check.returncode == 1
        assert "has no drift check (`migration_check = []`" in check.stderr
        current = stack.inv("db.current", check=False)
        assert current.returncode == 2
        assert "`migration_current` is not set" in current.stderr
    finally:
        pyproject.write_text(original[0])
        models.write_text(original[1])
        (stack.root / "fakemig.py").unlink(missing_ok=True)
        for path in set(versions.iterdir()) - before:
            path.unlink()


@pytest.mark.parametrize("stack", ["prod"], indirect=True)
def test_revision_in_an_image_that_cannot_write_says_what_to_mount(stack: Stack) -> None:
    versions = stack.root / VERSIONS
    before = set(versions.iterdir())
    result = stack.inv("db.revision", "-m", "in production", "--empty", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PermissionError" in result.stdout + result.stderr, "the tool's own error is shown"
    assert "the revision command failed (exit 1; its error is above)" in result.stderr
    assert "is not bind-mounted into the 'migrate' service" in result.stderr
    assert '"- .:/app"' in result.stderr
    assert set(versions.iterdir()) == before
    assert not revision_containers(stack), "the kept container is removed"
