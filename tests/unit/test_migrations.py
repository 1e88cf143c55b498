"""The migration CLI settings: presets, overrides, placeholders, and one clear error each."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from dockwork import migrations
from dockwork.config import Config, load_config
from dockwork.errors import ConfigError, DockworkError, UsageError
from dockwork.noxtools import roundtrip_steps


def project(tmp_path: Path, table: str = "", environ: dict[str, str] | None = None) -> Config:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n\n[tool.dockwork]\ncompose_files = ["compose.yaml"]\n{table}\n'
    )
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    return load_config(tmp_path, environ=environ or {})


def refused(tmp_path: Path, table: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as excinfo:
        project(tmp_path, table, environ)
    return excinfo.value.message


def steps(config: Config) -> dict[str, list[str]]:
    """Every step with the task's values filled in."""
    return {
        "upgrade": migrations.command(config, "upgrade", revision="0001"),
        "downgrade": migrations.command(config, "downgrade", revision="-1"),
        "revision": migrations.command(config, "revision", message="add phone"),
        "empty_revision": migrations.command(config, "empty_revision", message="blank"),
        "check": migrations.command(config, "check"),
        "history": migrations.command(config, "history"),
        "current": migrations.command(config, "current"),
    }


def test_defaults_are_the_alembic_preset_of_alembic_command(tmp_path: Path) -> None:
    config = project(tmp_path)
    assert config.migration_tool == "alembic"
    assert config.migrate_command == ("python", "-m", "app.db", "upgrade", "head")
    app_db = ["python", "-m", "app.db"]
    assert steps(config) == {
        "upgrade": [*app_db, "upgrade", "0001"],
        "downgrade": [*app_db, "downgrade", "-1"],
        "revision": [*app_db, "revision", "-m", "add phone", "--autogenerate"],
        "empty_revision": [*app_db, "revision", "-m", "blank"],
        "check": [*app_db, "check"],
        "history": [*app_db, "history", "--indicate-current"],
        "current": [*app_db, "current", "--verbose"],
    }


def test_this_repository_settings_keep_working() -> None:
    config = load_config(Path(__file__).resolve().parents[2], environ={})
    assert config.migrate_command == ("python", "-m", "app.db", "upgrade", "head")
    assert migrations.upgrade_to_head(config) == ["python", "-m", "app.db", "upgrade", "head"]
    assert migrations.command(config, "check") == ["python", "-m", "app.db", "check"]
    assert migrations.versions_dir(config) == config.root / "src/app/db/migrations/versions"


def test_alembic_command_alone_gives_the_migrate_command(tmp_path: Path) -> None:
    config = project(tmp_path, 'alembic_command = ["alembic", "-c", "db/alembic.ini"]')
    assert config.migrate_command == ("alembic", "-c", "db/alembic.ini", "upgrade", "head")
    assert migrations.command(config, "check") == ["alembic", "-c", "db/alembic.ini", "check"]


def test_advanced_alchemy_as_litestar_fullstack_runs_it(tmp_path: Path) -> None:
    # its compose file: `litestar database upgrade --no-prompt`; its docs: `app database …`
    config = project(
        tmp_path,
        'migration_tool = "advanced-alchemy"\n'
        'migrate_command = ["litestar", "database", "upgrade", "--no-prompt"]',
    )
    db = ["litestar", "database"]
    assert steps(config) == {
        "upgrade": [*db, "upgrade", "0001", "--no-prompt"],
        "downgrade": [*db, "downgrade", "-1", "--no-prompt"],
        "revision": [*db, "make-migrations", "-m", "add phone", "--autogenerate", "--no-prompt"],
        "empty_revision": [
            *db,
            "make-migrations",
            "-m",
            "blank",
            "--no-autogenerate",
            "--no-prompt",
        ],
        "check": [*db, "check"],
        "history": [*db, "history", "--indicate-current"],
        "current": [*db, "show-current-revision", "--verbose"],
    }
    assert migrations.upgrade_to_head(config) == [*db, "upgrade", "head", "--no-prompt"]


def test_advanced_alchemy_program_gives_the_migrate_command(tmp_path: Path) -> None:
    config = project(
        tmp_path, 'migration_tool = "advanced-alchemy"\nmigration_program = ["app", "database"]'
    )
    assert config.migrate_command == ("app", "database", "upgrade", "head", "--no-prompt")


def test_advanced_alchemy_without_a_program_names_the_key(tmp_path: Path) -> None:
    message = refused(tmp_path, 'migration_tool = "advanced-alchemy"')
    assert "`migration_program` is not set" in message
    assert '["litestar", "database"]' in message
    message = refused(
        tmp_path, 'migration_tool = "advanced-alchemy"\nmigrate_command = ["./migrate.sh"]'
    )
    assert "`migration_program` is not set" in message
    assert "./migrate.sh" in message


def test_a_setting_overrides_the_preset_and_placeholders_fill_part_of_a_word(
    tmp_path: Path,
) -> None:
    config = project(
        tmp_path,
        'migration_revision = ["python", "-m", "app.db", "revision", "--message={message}", '
        '"--autogenerate"]\n'
        'migration_check = ["python", "-m", "app.db", "check", "{{literal}}"]',
    )
    assert migrations.command(config, "revision", message="add {x} 'phone'") == [
        "python", "-m", "app.db", "revision", "--message=add {x} 'phone'", "--autogenerate",
    ]  # fmt: skip
    assert migrations.command(config, "check") == ["python", "-m", "app.db", "check", "{literal}"]
    assert migrations.command(config, "history")[-1] == "--indicate-current", "the preset's"


def test_custom_tool_runs_only_what_is_set(tmp_path: Path) -> None:
    config = project(
        tmp_path,
        'migration_tool = "custom"\n'
        'migration_upgrade = ["./manage", "migrate", "--to", "{revision}"]\n'
        'migration_revision = ["./manage", "new", "{message}"]\n'
        "migration_check = []",
    )
    assert config.migrate_command == ("./manage", "migrate", "--to", "head")
    assert migrations.command(config, "upgrade", revision="7") == [
        "./manage", "migrate", "--to", "7"
    ]  # fmt: skip
    with pytest.raises(ConfigError) as unset:
        migrations.command(config, "downgrade", revision="-1")
    assert unset.value.exit_code == 2
    assert "`migration_downgrade` is not set" in unset.value.message
    assert "{revision}" in unset.value.message
    assert "`inv db.downgrade` cannot run" in unset.value.message
    with pytest.raises(DockworkError) as lacking:
        migrations.command(config, "check")
    assert lacking.value.exit_code == 1
    assert lacking.value.message == (
        "this project's migration tool has no drift check (`migration_check = []` in "
        "[tool.dockwork]), so `inv db.check` cannot run."
    )


def test_custom_tool_needs_an_upgrade(tmp_path: Path) -> None:
    message = refused(tmp_path, 'migration_tool = "custom"')
    assert "`migrate_command`" in message
    assert "`migration_upgrade`" in message
    only_migrate = project(
        tmp_path, 'migration_tool = "custom"\nmigrate_command = ["./migrate.sh"]'
    )
    assert migrations.upgrade_to_head(only_migrate) == ["./migrate.sh"]


def test_an_upgrade_without_revision_goes_to_head_only(tmp_path: Path) -> None:
    config = project(tmp_path, 'migration_tool = "custom"\nmigration_upgrade = ["./up"]')
    assert migrations.upgrade_to_head(config) == ["./up"]
    with pytest.raises(UsageError) as excinfo:
        migrations.command(config, "upgrade", revision="0001")
    assert "takes no {revision}, so it cannot move to '0001'" in excinfo.value.message


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'migration_upgrade = ["alembic", "upgrade", "{rev}"]',
            (
                "`migration_upgrade` uses the placeholder {rev}, which dockwork does not fill: in "
                "`migration_upgrade` it fills {revision}."
            ),
        ),
        (
            'migration_check = ["alembic", "check", "{message}"]',
            (
                "`migration_check` uses the placeholder {message}, which dockwork does not "
                "fill: in `migration_check` it fills no placeholder."
            ),
        ),
        ('migration_downgrade = ["alembic", "downgrade", "{revision!r}"]', "not a plain name"),
        ('migration_downgrade = ["alembic", "downgrade", "{}"]', "not a plain name"),
        ('migration_upgrade = ["alembic", "upgrade", "{revision"]', "not a valid template"),
        ('migration_revision = ["alembic", "revision"]', "does not use {message}"),
        ('migration_downgrade = ["alembic", "downgrade", "-1"]', "does not use {revision}"),
        ('migration_check = "alembic check"', "`migration_check` must be a list of strings"),
        ('migration_tool = "flyway"', "`migration_tool` must be one of alembic, advanced-alchemy"),
        (
            'migrate_command = ["alembic", "upgrade", "{revision}"]',
            "`migrate_command` runs as written and fills no placeholder",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, table: str, expected: str) -> None:
    message = refused(tmp_path, table)
    assert expected in message
    assert "\n" not in message, "one paragraph"
    assert "[tool.dockwork]" in message


def test_error_says_where_the_value_came_from(tmp_path: Path) -> None:
    message = refused(tmp_path, "", {"DOCKWORK_MIGRATION_CHECK": "alembic check {x}"})
    assert message.startswith("environment variable DOCKWORK_MIGRATION_CHECK: ")


def test_settings_from_the_environment_are_split_like_a_shell(tmp_path: Path) -> None:
    config = project(tmp_path, "", {"DOCKWORK_MIGRATION_CHECK": "alembic check 'a b'"})
    assert migrations.command(config, "check") == ["alembic", "check", "a b"]


def test_versions_directory(tmp_path: Path) -> None:
    (tmp_path / "db" / "migrations" / "versions").mkdir(parents=True)
    config = project(tmp_path, 'template_inputs = ["db"]')
    assert migrations.versions_dir(config) == tmp_path / "db" / "migrations" / "versions"
    (tmp_path / "db" / "other" / "versions").mkdir(parents=True)
    assert migrations.versions_dir(config) is None, "two candidates: not a guess"
    config = project(tmp_path, 'template_inputs = ["db"]\nmigration_versions = "db/other/versions"')
    assert migrations.versions_dir(config) == tmp_path / "db" / "other" / "versions"
    config = project(tmp_path, 'template_inputs = ["db"]\nmigration_versions = "nope"')
    with pytest.raises(ConfigError, match="`migration_versions` is 'nope'"):
        migrations.versions_dir(config)


def test_where_a_file_from_the_container_belongs(tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    config = project(tmp_path, 'container_workdir = "/srv"')
    place = migrations.host_path
    assert place(config, PurePosixPath("/srv/migrations/versions/1.py"), versions) == (
        versions / "1.py"
    )
    assert place(config, PurePosixPath("/app/x/migrations/versions/1.py"), versions) == (
        versions / "1.py"
    ), "a production image's copy elsewhere: by the directory's name"
    assert place(config, PurePosixPath("/srv/other.py"), versions) is None
    assert place(config, PurePosixPath("/srv/migrations/versions/1.py"), None) == versions / "1.py"
    assert place(config, PurePosixPath("/srv/nowhere/1.py"), None) is None


def test_added_files_from_docker_diff() -> None:
    diff = "C /srv/v\nA /srv/v/1.py\nA /srv/v/__pycache__\nA /srv/v/.hidden\nD /srv/v/0.py\n"
    assert migrations.added_files(diff) == [PurePosixPath("/srv/v/1.py")]


def test_a_revision_written_into_the_installed_package_is_found(tmp_path: Path) -> None:
    """An image that installs the project as a package (litestar-fullstack) writes the new
    revision under .venv/…/site-packages: it is found, and placed in the versions dir."""
    inside = "/workspace/app/.venv/lib/python3.13/site-packages/app/db/migrations/versions/2_x.py"
    diff = f"A {inside}\nA /workspace/app/.venv/lib/x/__pycache__/y.cpython-313.pyc\n"
    assert migrations.added_files(diff) == [PurePosixPath(inside)]
    versions = tmp_path / "src" / "py" / "app" / "db" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dockwork]\ncompose_files = ["c.yaml"]\ncontainer_workdir = "/workspace/app"\n'
    )
    config = load_config(tmp_path, environ={}, require_compose_files=False)
    assert migrations.host_path(config, PurePosixPath(inside), versions) == versions / "2_x.py"


def test_mounted_when_a_bind_mount_holds_the_directory(tmp_path: Path) -> None:
    resolved = {
        "services": {
            "migrate": {
                "volumes": [
                    {"type": "volume", "source": "data", "target": "/data"},
                    {"type": "bind", "source": str(tmp_path / "src"), "target": "/app/src"},
                ]
            }
        }
    }
    assert migrations.is_mounted(resolved, "migrate", tmp_path / "src" / "db" / "versions")
    assert not migrations.is_mounted(resolved, "migrate", tmp_path / "migrations")
    assert not migrations.is_mounted(resolved, "app", tmp_path / "src")


def test_roundtrip_uses_the_tool(tmp_path: Path) -> None:
    alembic = roundtrip_steps(project(tmp_path, 'alembic_command = ["alembic"]'))
    assert alembic == [
        ("upgrade", ["alembic", "upgrade", "head"]),
        ("downgrade", ["alembic", "downgrade", "base"]),
        ("upgrade", ["alembic", "upgrade", "head"]),
        ("check", ["alembic", "check"]),
    ]
    aa = roundtrip_steps(
        project(tmp_path, 'migration_tool = "advanced-alchemy"\nmigration_program = ["app", "db"]')
    )
    assert aa[1] == ("downgrade", ["app", "db", "downgrade", "base", "--no-prompt"])
    custom = project(
        tmp_path,
        'migration_tool = "custom"\nmigrate_command = ["./up"]\nmigration_downgrade = []\n'
        'migration_check = ["./check"]',
    )
    assert roundtrip_steps(custom) == [
        ("upgrade", ["./up"]),
        ("downgrade", None),
        ("upgrade", ["./up"]),
        ("check", ["./check"]),
    ]
