"""`inv doctor` after `dockwork init`: every setting init left open is a failed line
pointing at it, and the migration program is looked for where it runs, here and in the
migration service's image, so nothing fails only when first used."""

from __future__ import annotations

import os
import textwrap
import uuid
from typing import TYPE_CHECKING

from dockwork import doctor
from tests.helpers import needs_docker

if TYPE_CHECKING:
    from pathlib import Path

COMPOSE = """
services:
  db:
    image: {postgres}
  migrate:
    image: {python}
    command: ["alembic", "upgrade", "head"]
"""


def project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "compose.yaml").write_text(
        COMPOSE.format(
            postgres=os.environ.get("POSTGRES_IMAGE", "postgres:17"),
            python=os.environ.get("PYTHON_IMAGE", "python:3.12"),
        )
    )
    (tmp_path / "migrations").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "p"\n\n[tool.dockwork]\n'
        f'project_name = "dwdoc{uuid.uuid4().hex[:8]}"\ncompose_files = ["compose.yaml"]\n'
        f'app_service = "migrate"\ntemplate_inputs = ["migrations"]\n'
        f"{textwrap.dedent(table)}"
    )
    return tmp_path


def lines(root: Path) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.run_checks(root)}


def test_a_setting_init_left_open_points_at_its_line(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "# migrate_command = …  # dockwork init could not tell: the command that migrates\n",
    )
    check = lines(root)["setting migrate_command"]
    assert check.status == doctor.FAIL
    assert check.fix == "fill it in: pyproject.toml line 9"
    assert "the command that migrates" in check.detail


def test_a_migration_program_missing_here_is_named(tmp_path: Path) -> None:
    root = project(tmp_path, 'migrate_command = ["no-such-migrator", "up"]\n')
    check = lines(root)["migrations here"]
    assert check.status == doctor.FAIL
    assert "`no-such-migrator`" in check.detail
    assert "uv add --dev no-such-migrator" in check.fix


def test_the_migration_program_is_looked_for_in_the_service_image(tmp_path: Path) -> None:
    needs_docker()
    root = project(tmp_path, 'migrate_service = "migrate"\nmigrate_command = ["python3", "-V"]\n')
    found = lines(root)
    assert found["migrations in migrate"].status == doctor.OK, found["migrations in migrate"]
    # alembic: installed here (the dev environment), but not in the service's image
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml")
        .read_text()
        .replace('["python3", "-V"]', '["alembic", "upgrade", "head"]')
    )
    found = lines(root)
    assert found["migrations here"].status == doctor.OK
    check = found["migrations in migrate"]
    assert check.status == doctor.FAIL
    assert "`alembic` of migrate_command is not in service 'migrate'" in check.detail


def test_a_custom_migration_tool_lists_the_commands_left_unset(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        'migration_tool = "custom"\nmigrate_command = ["python3", "-V"]\n'
        'migration_revision = ["./manage", "new", "-m", "{message}"]\n',
    )
    check = lines(root)["migration commands"]
    assert check.status == doctor.WARN
    assert "migration_downgrade (inv db.downgrade)" in check.detail
    assert "migration_revision" not in check.detail


def test_a_placeholder_filled_in_on_another_line_is_done(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "# migrate_command = …  # dockwork init could not tell: the command that migrates\n"
        'migrate_command = ["python3", "-V"]\n',
    )
    assert "setting migrate_command" not in lines(root)
