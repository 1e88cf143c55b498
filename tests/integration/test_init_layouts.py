"""`dockwork init` on the layouts real projects have, read by the real `docker compose`:

- FastAPI's full-stack template: a uv workspace at the root with the compose files, the
  Python project in backend/ (alembic.ini there), a `prestart` one-shot running a script,
  the app reading split POSTGRES_* variables, psycopg 3 without a driver in any URL;
- litestar-fullstack: compose files under tools/deploy/docker (an infra-only set beside
  the app's), settings from an env_file, asyncpg, tests on pytest-databases, testpaths.

init asks nothing, says which compose set it chose and why, and what it wrote.
"""

from __future__ import annotations

import shutil
import textwrap
import tomllib
from typing import TYPE_CHECKING

import pytest

from dockwork import scaffold
from dockwork.config import load_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


FASTAPI = {
    ".git/HEAD": "ref: refs/heads/main\n",
    "pyproject.toml": """
        [tool.uv.workspace]
        members = ["backend"]
    """,
    ".env": """
        POSTGRES_PASSWORD=changethis
        SECRET_KEY=changethis
    """,
    "compose.yml": """
        services:
          db:
            image: postgres:18
            environment:
              POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?Variable not set}
              POSTGRES_DB: app
          prestart:
            build: {context: ., dockerfile: backend/Dockerfile}
            command: bash scripts/prestart.sh
            environment: &env
              POSTGRES_SERVER: db
              POSTGRES_PORT: "5432"
              POSTGRES_USER: postgres
              POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?Variable not set}
              POSTGRES_DB: app
              SECRET_KEY: ${SECRET_KEY:?Variable not set}
            depends_on:
              db: {condition: service_healthy}
          backend:
            build: {context: ., dockerfile: backend/Dockerfile}
            ports: ["8000:8000"]
            environment: *env
            depends_on:
              prestart: {condition: service_completed_successfully}
    """,
    "compose.override.yml": """
        services:
          db:
            ports: ["5432:5432"]
    """,
    "backend/pyproject.toml": """
        [project]
        name = "app"
        version = "0.1.0"
        dependencies = ["fastapi", "psycopg[binary]>=3.2", "sqlmodel", "alembic"]

        [dependency-groups]
        dev = ["pytest>=8"]
    """,
    "backend/alembic.ini": """
        [alembic]
        script_location = app/alembic
    """,
    "backend/app/alembic/env.py": "",
    "backend/tests/test_x.py": "",
}

LITESTAR = {
    ".git/HEAD": "ref: refs/heads/main\n",
    "pyproject.toml": """
        [project]
        name = "app"
        version = "0.1.0"
        dependencies = ["litestar", "advanced-alchemy", "asyncpg", "saq"]

        [dependency-groups]
        test = ["pytest", "pytest-xdist", "pytest-databases[postgres]>=0.1.0"]

        [tool.pytest.ini_options]
        testpaths = ["src/py/tests"]
    """,
    ".env.local.example": """
        DATABASE_URL=postgresql+asyncpg://app:app@db:5432/app
        SAQ_REDIS_URL=redis://cache:6379/0
    """,
    "tools/deploy/docker/docker-compose.infra.yml": """
        services:
          cache: {image: "valkey/valkey:latest", ports: ["16379:6379"]}
          db:
            image: postgres:latest
            ports: ["15432:5432"]
            environment: {POSTGRES_PASSWORD: app, POSTGRES_USER: app, POSTGRES_DB: app}
    """,
    "tools/deploy/docker/docker-compose.yml": """
        services:
          cache: {image: "valkey/valkey:latest"}
          db:
            image: postgres:latest
            environment: {POSTGRES_PASSWORD: app, POSTGRES_USER: app, POSTGRES_DB: app}
          app:
            build: {context: ., dockerfile: docker/run/Dockerfile}
            ports: ["8000:8000"]
            env_file: [../../../.env.local.example]
          migrator:
            build: {context: ., dockerfile: docker/run/Dockerfile}
            restart: "no"
            command: litestar database upgrade --no-prompt
            env_file: [../../../.env.local.example]
    """,
    "src/py/app/db/migrations/alembic.ini": "[alembic]\nscript_location = .\n",
    "src/py/tests/conftest.py": 'pytest_plugins = ["pytest_databases.docker.postgres"]\n',
}


def test_fastapi_template_from_the_repository_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, FASTAPI)
    assert scaffold.init(tmp_path) == 0
    out = capsys.readouterr().out
    backend = tmp_path / "backend"
    assert f"dockwork init in {backend}" in out, out
    assert "compose files ../compose.yml + ../compose.override.yml: builds and publishes" in out
    table = tomllib.loads((backend / "pyproject.toml").read_text())["tool"]["dockwork"]
    assert table["compose_files"] == ["../compose.yml", "../compose.override.yml"]
    assert table["app_service"] == "backend"
    assert table["postgres_image"] == "postgres:18", "the tests run on the app's major"
    assert table["migrate_service"] == "prestart"
    # the prestart script does more than migrate: alembic itself, where alembic.ini is
    assert table["migrate_command"] == ["alembic", "upgrade", "head"]
    assert table["template_inputs"] == ["app/alembic"]
    assert table["test_paths"] == ["tests"]
    assert table["test_env"] == {
        "POSTGRES_SERVER": "{postgres.host}",
        "POSTGRES_PORT": "{postgres.port}",
        "POSTGRES_USER": "{postgres.user}",
        "POSTGRES_PASSWORD": "{postgres.password}",
        "POSTGRES_DB": "{postgres.database}",
    }
    assert (backend / "tasks.py").is_file()
    assert (backend / "noxfile.py").is_file()
    # .env beside the compose files has the required variables: no .env.example written
    assert not (tmp_path / ".env.example").exists()
    assert not (backend / ".env.example").exists()
    # what init wrote loads, from the root and from backend/
    for start in (tmp_path, backend):
        config = load_config(start)
        assert config.root == backend
        assert dict(config.test_env)["POSTGRES_SERVER"] == "{postgres.host}"


def test_fastapi_template_database_url_gets_the_driver_from_the_dependencies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(FASTAPI)
    files["compose.yml"] = files["compose.yml"].replace(
        "POSTGRES_SERVER: db", "DATABASE_URL: postgresql://postgres:x@db:5432/app"
    )
    write(tmp_path, files)
    scaffold.init(tmp_path / "backend")
    out = capsys.readouterr().out
    table = tomllib.loads((tmp_path / "backend" / "pyproject.toml").read_text())
    dockwork = table["tool"]["dockwork"]
    assert dockwork["database_url_env"] == "DATABASE_URL"
    assert dockwork["database_scheme"] == "postgresql+psycopg", out
    assert dockwork["test_env"]["DATABASE_URL"] == "{postgres.url}"


def test_litestar_fullstack_compose_in_a_deploy_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, LITESTAR)
    assert scaffold.init(tmp_path) == 0
    out = capsys.readouterr().out
    assert "compose files tools/deploy/docker/docker-compose.yml: builds and publishes app" in out
    assert "also found: tools/deploy/docker/docker-compose.infra.yml" in out
    table = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["dockwork"]
    assert table["compose_files"] == ["tools/deploy/docker/docker-compose.yml"]
    assert table["app_service"] == "app"
    assert table["migrate_service"] == "migrator"
    assert table["migrate_command"] == ["litestar", "database", "upgrade", "--no-prompt"]
    assert table["migration_tool"] == "advanced-alchemy"
    assert table["migration_program"] == ["litestar", "database"]
    assert "alembic_command" not in table
    assert table["template_inputs"] == ["src/py/app/db/migrations"]
    assert table["test_services"] == ["postgres", "redis"]
    assert table["redis_image"] == "valkey/valkey:latest"
    assert table["test_paths"] == ["src/py/tests"]
    assert table["pytest_databases"] is True
    assert table["database_scheme"] == "postgresql+asyncpg"
    assert table["test_env"] == {"DATABASE_URL": "{postgres.url}", "SAQ_REDIS_URL": "{redis.url}"}


def test_compose_named_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, LITESTAR)
    infra = tmp_path / "tools/deploy/docker/docker-compose.infra.yml"
    scaffold.init(tmp_path, compose=[infra])
    out = capsys.readouterr().out
    assert "named with --compose" in out
    table = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["dockwork"]
    assert table["compose_files"] == ["tools/deploy/docker/docker-compose.infra.yml"]


def test_a_copy_without_git_is_searched_from_where_init_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template copied with copier, or downloaded as an archive, has no .git."""
    files = {k: v for k, v in FASTAPI.items() if not k.startswith(".git/")}
    write(tmp_path, files)
    assert scaffold.init(tmp_path) == 0
    assert "compose files ../compose.yml" in capsys.readouterr().out


def test_the_project_name_is_composes_own(tmp_path: Path) -> None:
    """Plain `docker compose` at the root and dockwork manage one stack, not two."""
    write(tmp_path, FASTAPI)
    scaffold.init(tmp_path)
    assert load_config(tmp_path / "backend").project_name == tmp_path.name.lower()
    named = tmp_path / "compose.yml"
    named.write_text("name: shopfront\n" + named.read_text())
    assert load_config(tmp_path / "backend").project_name == "shopfront"


def test_a_db_upgrade_cli_of_the_projects_own_is_custom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(LITESTAR)
    files["pyproject.toml"] = files["pyproject.toml"].replace(
        '"litestar", "advanced-alchemy", "asyncpg", "saq"', '"asyncpg", "sqlalchemy"'
    )
    files["tools/deploy/docker/docker-compose.yml"] = files[
        "tools/deploy/docker/docker-compose.yml"
    ].replace("litestar database upgrade --no-prompt", "python -m shop.manage db upgrade")
    write(tmp_path, files)
    scaffold.init(tmp_path)
    out = capsys.readouterr().out
    table = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["dockwork"]
    assert table["migration_tool"] == "custom", out
    assert "migration_program" not in table
    assert "# migration_revision = …" in (tmp_path / "pyproject.toml").read_text()


def test_init_force_keeps_the_table_when_an_env_file_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--force replaces [tool.dockwork] with what init infers, but not with a table
    inferred without the app's env_file (the servers' settings were in it): that would
    drop test_env. Once the file is back, --force rewrites (no blank line added)."""
    write(tmp_path, LITESTAR)
    scaffold.init(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    first = pyproject.read_text()
    assert "SAQ_REDIS_URL" in first
    env_file = tmp_path / ".env.local.example"
    env_file.rename(tmp_path / "moved.env")
    capsys.readouterr()
    assert scaffold.init(tmp_path, force=True) == 0
    out = capsys.readouterr().out
    assert "not read: .env.local.example (app's env_file) does not exist" in out, out
    assert "not replaced by one inferred without the files below" in out, out
    assert pyproject.read_text() == first, "the table inferred with the file is kept"

    (tmp_path / "moved.env").rename(env_file)
    pyproject.write_text(first.replace('test_paths = ["src/py/tests"]', 'test_paths = ["x"]'))
    assert scaffold.init(tmp_path, force=True) == 0
    assert pyproject.read_text() == first, "rewritten as inferred, nothing added at its end"
