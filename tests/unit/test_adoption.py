"""What dockwork infers about a project it is adopted by: from its compose files, its
migration command and the revisions alembic writes."""

from __future__ import annotations

import copy
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from dockwork.config import derive_template_inputs, load_config
from dockwork.errors import ConfigError
from dockwork.scaffold import infer, render_table
from dockwork.tasks.db import empty_revision

if TYPE_CHECKING:
    from pathlib import Path

FOREIGN = {
    "services": {
        "postgres": {
            "image": "${PG_IMAGE:-postgres:16}",
            "environment": ["POSTGRES_PASSWORD=${PGPASS:?set it}"],
        },
        "migrations": {"build": {"context": "."}, "command": ["alembic", "upgrade", "head"]},
        "web": {
            "build": {"context": "."},
            "ports": ["${WEB_PORT:-5000}:5000"],
            "environment": ["SQLALCHEMY_URL=postgresql+psycopg://u:${PGPASS:?set it}@postgres/db"],
            "depends_on": {"migrations": {"condition": "service_completed_successfully"}},
        },
    }
}


def test_a_foreign_project_is_read_from_its_compose_files(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    (tmp_path / "migrations").mkdir()
    raw = "services:\n  postgres:\n    environment: {POSTGRES_PASSWORD: ${PGPASS:?set it}}\n"
    found = infer(tmp_path, FOREIGN, raw + "  x: $${NOT_A_VARIABLE} ${WITH_DEFAULT:-1}\n")
    assert found.settings == {
        "db_service": "postgres",
        "app_service": "web",
        "test_services": ["postgres"],
        "postgres_image": "postgres:16",
        "migrate_service": "migrations",
        "migrate_command": ["alembic", "upgrade", "head"],
        "alembic_command": ["alembic"],
        "template_inputs": ["migrations"],
        "database_url_env": "SQLALCHEMY_URL",
        "database_scheme": "postgresql+psycopg",
    }
    assert found.required_variables == ["PGPASS"]
    assert found.missing == {}
    table = render_table(("compose.yaml", None), found)
    assert 'test_services = ["postgres"]' in table
    assert "redis" not in table, "no Redis for a project that runs none"


def test_what_cannot_be_inferred_is_a_commented_placeholder(tmp_path: Path) -> None:
    found = infer(tmp_path, {"services": {"thing": {"image": "busybox"}}}, "")
    table = render_table(("compose.yaml", None), found)
    assert "# db_service = …  # dockwork init could not tell" in table
    assert "# migrate_command = …" in table
    assert set(found.missing) == {"db_service", "app_service", "migrate_service", "migrate_command"}


def project(tmp_path: Path, table: str, compose: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.dockwork]\n{table}\n')
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose))
    return tmp_path


def test_test_services_default_to_what_the_compose_files_run(tmp_path: Path) -> None:
    files = 'compose_files = ["compose.yaml"]'
    only_pg = project(tmp_path, files, "services:\n  db:\n    image: postgres:17\n")
    assert load_config(only_pg, environ={}).test_services == ("postgres",)
    both = (
        "services:\n  db:\n    image: ${PG:-postgis/postgis:16}\n"
        "  cache:\n    image: valkey/valkey:8\n"
    )
    (tmp_path / "compose.yaml").write_text(both)
    assert load_config(tmp_path, environ={}).test_services == ("postgres", "redis")
    explicit = load_config(tmp_path, environ={"DOCKWORK_TEST_SERVICES": "postgres"})
    assert explicit.test_services == ("postgres",)


def test_template_inputs_follow_the_migrate_command(tmp_path: Path) -> None:
    compose = "services:\n  db:\n    image: postgres:17\n"
    (tmp_path / "src" / "shop" / "db").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "db" / "__main__.py").write_text("")
    table = (
        'compose_files = ["compose.yaml"]\n'
        'migrate_command = ["python", "-m", "shop.db", "upgrade", "head"]'
    )
    config = load_config(project(tmp_path, table, compose), environ={})
    assert config.template_inputs == ("src/shop/db",)
    assert config.template_paths() == [tmp_path.resolve() / "src" / "shop" / "db"]


def test_template_inputs_that_match_nothing_name_the_key(tmp_path: Path) -> None:
    compose = "services:\n  db:\n    image: postgres:17\n"
    flat = project(tmp_path, 'compose_files = ["compose.yaml"]\ntemplate_inputs = ["src"]', compose)
    with pytest.raises(ConfigError, match="`template_inputs` names 'src', which match no file"):
        load_config(flat, environ={}).template_paths()
    unknown = 'compose_files = ["compose.yaml"]\nmigrate_command = ["./migrate.sh"]'
    with pytest.raises(ConfigError, match="`template_inputs` is not set"):
        load_config(project(tmp_path, unknown, compose), environ={}).template_paths()


NO_CHANGE = '''"""x

Revision ID: abc
"""
from alembic import op

def upgrade() -> None:
    """Upgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    pass
    # ### end Alembic commands ###


def downgrade() -> None:
    pass
'''


def test_an_autogenerated_revision_without_changes_is_recognised() -> None:
    assert empty_revision(NO_CHANGE)
    changed = NO_CHANGE.replace(
        "    pass\n    # ### end", "    op.add_column('t', None)\n    # ### end"
    )
    assert not empty_revision(changed)
    assert not empty_revision("def upgrade(:\n")


LITESTAR: dict[str, Any] = {
    "services": {
        "db": {"image": "postgres:17"},
        "app": {
            "build": {"context": ".", "dockerfile": "docker/run/Dockerfile"},
            "ports": ["8000:8000"],
            "environment": {"DATABASE_URL": "postgresql+asyncpg://app:pw@db/app"},
        },
        "migrator": {
            "build": {"context": ".", "dockerfile": "docker/run/Dockerfile"},
            "command": ["litestar", "database", "upgrade", "--no-prompt"],
            "restart": "no",
        },
    }
}


def test_the_litestar_cli_s_app_is_carried_into_test_env(tmp_path: Path) -> None:
    """The tests migrate on this machine with the image's migration command; the image
    tells the litestar CLI where the app is (litestar-fullstack's Dockerfile does)."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\ndependencies = ["litestar", "advanced-alchemy"]\n'
    )
    dockerfile = tmp_path / "docker/run/Dockerfile"
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text(
        "FROM python:3.12-slim AS base\nENV PYTHONUNBUFFERED=1 \\\n"
        "    LITESTAR_APP=app.old:create_app\n"
        "FROM base AS run\n"
        'ENV LITESTAR_APP="app.server.asgi:create_app" PIP_NO_CACHE_DIR=1\n'
    )
    found = infer(tmp_path, LITESTAR, "")
    assert found.settings["migration_tool"] == "advanced-alchemy"
    assert found.test_env["LITESTAR_APP"] == "app.server.asgi:create_app", "the last ENV wins"
    said = "LITESTAR_APP = 'app.server.asgi:create_app' from migrator's Dockerfile"
    assert any(said in why for why in found.why), found.why
    table = render_table(("compose.yaml", None), found)
    assert 'LITESTAR_APP = "app.server.asgi:create_app"' in table

    # the service's own environment first; and nothing for a command that is not litestar's
    given = copy.deepcopy(LITESTAR)
    given["services"]["migrator"]["environment"] = {"LITESTAR_APP": "app.main:app"}
    assert infer(tmp_path, given, "").test_env["LITESTAR_APP"] == "app.main:app"
    alembic = copy.deepcopy(LITESTAR)
    alembic["services"]["migrator"]["command"] = ["alembic", "upgrade", "head"]
    assert "LITESTAR_APP" not in infer(tmp_path, alembic, "").test_env


#: litestar-fullstack's Dockerfile (8b637ce4): the value comes through an ARG of the stage
ARG_DOCKERFILE = """\
ARG PYTHON_VERSION=3.13
ARG BUILDER_IMAGE=python:${PYTHON_VERSION}-slim
ARG APP_MODULE=app.global:app
FROM ${BUILDER_IMAGE} AS python-base
ARG LITESTAR_APP="app.server.asgi:create_app"
ENV PATH="/workspace/app/.venv/bin:$PATH" \\
    LITESTAR_APP="${LITESTAR_APP}"
"""


@pytest.mark.parametrize(
    ("dockerfile", "args", "expected"),
    [
        (ARG_DOCKERFILE, None, "app.server.asgi:create_app"),
        # a build arg of the service wins over the ARG's default
        (ARG_DOCKERFILE, ["LITESTAR_APP=app.other:make"], "app.other:make"),
        (ARG_DOCKERFILE, {"LITESTAR_APP": "app.mapped:make"}, "app.mapped:make"),
        # read uninterpolated: a variable's default, or nothing known (the ARG's default)
        (ARG_DOCKERFILE, ["LITESTAR_APP=${APP:-app.var:make}"], "app.var:make"),
        (ARG_DOCKERFILE, ["LITESTAR_APP=${APP}"], "app.server.asgi:create_app"),
        # ARGs before FROM fill each other
        ("ARG A=app.a:x\nARG B=${A}\nFROM x\nARG B\nENV LITESTAR_APP=$B\n", None, "app.a:x"),
        # ${NAME:-default} of an ARG without a value: the default
        ("FROM x\nARG MODULE\nENV LITESTAR_APP=${MODULE:-app.d:app}\n", None, "app.d:app"),
        # an ARG declared before FROM counts in a stage only where the stage re-declares it
        ("ARG M=app.g:app\nFROM x\nARG M\nENV LITESTAR_APP=$M\n", None, "app.g:app"),
        ("ARG M=app.g:app\nFROM x\nENV LITESTAR_APP=$M\n", None, None),
        # a reference to nothing the file or the service gives: unknown here, not inferred
        ('FROM x\nENV LITESTAR_APP="${SOMETHING}"\n', None, None),
    ],
)
def test_the_litestar_app_through_a_dockerfile_arg_is_inferred(
    tmp_path: Path, dockerfile: str, args: object, expected: str | None
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\ndependencies = ["litestar", "advanced-alchemy"]\n'
    )
    path = tmp_path / "docker/run/Dockerfile"
    path.parent.mkdir(parents=True)
    path.write_text(dockerfile)
    given = copy.deepcopy(LITESTAR)
    if args is not None:
        given["services"]["migrator"]["build"]["args"] = args
    assert infer(tmp_path, given, "").test_env.get("LITESTAR_APP") == expected


def test_migrations_beside_an_ini_naming_no_existing_location_are_found(tmp_path: Path) -> None:
    """litestar-fullstack's alembic.ini says ``script_location = migrations``, which does not
    exist: Advanced Alchemy sets the location in code, to the ini's own directory."""
    here = tmp_path / "src/py/app/db/migrations"
    (here / "versions").mkdir(parents=True)
    (here / "env.py").write_text("")
    (here / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    ini = "src/py/app/db/migrations/alembic.ini"
    argv = ["alembic", "-c", ini, "upgrade", "head"]
    assert derive_template_inputs(tmp_path, argv) == "src/py/app/db/migrations"
    (here / "env.py").unlink()
    assert derive_template_inputs(tmp_path, argv) is None, "not without the migrations"


def test_an_env_file_that_is_not_there_is_said_not_read(tmp_path: Path) -> None:
    """litestar-fullstack's app reads its servers from an env_file whose path is wrong in
    its compose files: init inferred no test_env and said nothing of why."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    given = copy.deepcopy(LITESTAR)
    app = given["services"]["app"]
    del app["environment"]
    present = tmp_path / "present.env"
    present.write_text("DATABASE_URL=postgresql+asyncpg://app:pw@db/app\n")
    app["env_file"] = [
        {"path": str(tmp_path / "tools" / ".env.local.example"), "required": True},
        {"path": str(tmp_path / ".env.${APP_ENV:-local}"), "required": True},  # Compose's
        {"path": str(tmp_path / "optional.env"), "required": False},
        {"path": str(present), "required": True},
    ]
    found = infer(tmp_path, given, "")
    assert len(found.unread) == 1, found.unread
    assert found.unread[0].startswith("tools/.env.local.example (app's env_file) does not exist")
    assert found.test_env["DATABASE_URL"] == "{postgres.url}", "the file that is there is read"


@pytest.mark.parametrize("waited", [True, False])
def test_the_migrate_service_s_reason_says_whether_anything_waits_for_it(
    tmp_path: Path, waited: bool
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    given = copy.deepcopy(LITESTAR)
    if waited:
        done = {"condition": "service_completed_successfully"}
        given["services"]["app"]["depends_on"] = {"migrator": done}
    why = " ".join(infer(tmp_path, given, "").why)
    said = "before the services that wait for it" if waited else "as the stack starts"
    assert f"migrate_service = 'migrator': it runs the migrations once, {said}" in why
