"""How the db tasks build their commands (MockContext): container, user, arguments."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from dockwork.compose import Compose
from dockwork.tasks import db

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker compose -p demo -f compose.yaml -f compose.override.yaml"
IDS = f"{os.getuid()}:{os.getgid()}"
UP_DB = f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans db"
RESOLVED: dict[str, Any] = {
    "services": {
        "db": {"environment": {"POSTGRES_USER": "app", "POSTGRES_DB": "appdb"}},
        "migrate": {"environment": {"DATABASE_URL": "postgresql+asyncpg://app:pw@db:5432/appdb"}},
    }
}


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DOCKWORK_PROJECT_NAME", "demo")
    monkeypatch.setattr("dockwork.tasks._base.check_engine", lambda timeout: None)
    monkeypatch.setattr("dockwork.envfile.ensure", lambda config: None)
    monkeypatch.setattr(Compose, "resolved", lambda self: RESOLVED)


def alembic(*args: str) -> str:
    return f"{BASE} run --rm -T --user {IDS} migrate python -m app.db " + shlex.join(args)


def on_db(*argv: str) -> str:
    return f"{BASE} exec -T db " + shlex.join(argv)


def ran(c: MockContext) -> list[str]:
    return [call.args[0] for call in c.run.call_args_list]  # type: ignore[attr-defined]


def test_revision_autogenerates_as_the_host_user(capsys: pytest.CaptureFixture[str]) -> None:
    cmd = alembic("revision", "-m", "add phone", "--autogenerate")
    out = "Generating /app/src/app/db/migrations/versions/20261129_ab12_add_phone.py ...  done"
    c = MockContext(run={cmd: Result(stdout=out)})
    db.revision(c, message="add phone")
    assert ran(c) == [cmd]
    assert "new migration: src/app/db/migrations/versions/20261129_ab12_add_phone.py" in (
        capsys.readouterr().out
    )


def test_revision_empty_and_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    c = MockContext(run={alembic("revision", "-m", "blank"): Result(stdout="")})
    db.revision(c, message="blank", empty=True)
    assert "nothing was written" in capsys.readouterr().out


def test_revision_needs_a_message() -> None:
    with pytest.raises(Exit) as excinfo:
        db.revision(MockContext(), message=" ")
    assert excinfo.value.code == 2


@pytest.mark.parametrize(
    ("task", "kwargs", "args"),
    [
        (db.upgrade, {}, ("upgrade", "head")),
        (db.upgrade, {"revision": "0001"}, ("upgrade", "0001")),
        (db.downgrade, {"revision": "-1"}, ("downgrade", "-1")),
        (db.history, {}, ("history", "--indicate-current")),
        (db.current, {}, ("current", "--verbose")),
        (db.check, {}, ("check",)),
    ],
)
def test_alembic_tasks(task: object, kwargs: dict[str, str], args: tuple[str, ...]) -> None:
    c = MockContext(run={alembic(*args): Result()})
    task(c, **kwargs)  # type: ignore[operator]
    assert ran(c) == [alembic(*args)]


def test_reset_refuses_without_yes_and_runs_nothing_destructive() -> None:
    c = MockContext(run={UP_DB: Result()})
    with pytest.raises(Exit) as excinfo:
        db.reset(c)
    assert "would drop database 'appdb'" in str(excinfo.value.message)
    assert ran(c) == [UP_DB]


def test_psql_runs_as_the_configured_user_and_passes_the_command_through_untouched() -> None:
    query = "SELECT 'it''s'; DROP TABLE x; -- $HOME"
    cmd = on_db("psql", "-U", "app", "-d", "appdb", "-c", query)
    c = MockContext(run={UP_DB: Result(), cmd: Result()})
    db.psql(c, command=query)
    assert ran(c) == [UP_DB, cmd]


def test_names_set_aside_stay_within_postgres_limit() -> None:
    name = db.aside("x" * 80, "before_restore")
    assert len(name.encode()) <= 63
    assert name.startswith("xxx")
    assert "_before_restore_" in name


def test_identifiers_and_literals_are_quoted() -> None:
    assert db.quote_ident('a"b') == '"a""b"'
    assert db.quote_literal("it's") == "'it''s'"


def test_restore_refuses_a_missing_file_before_touching_anything(tmp_path: Path) -> None:
    with pytest.raises(Exit) as excinfo:  # a MockContext without commands: nothing may run
        db.restore(MockContext(), file=str(tmp_path / "nope.dump"))
    assert "is not a file" in str(excinfo.value.message)


def test_dump_refuses_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "x.dump"
    target.write_text("precious")
    with pytest.raises(Exit) as excinfo:
        db.dump(MockContext(), file=str(target))
    assert "exists" in str(excinfo.value.message)
    assert target.read_text() == "precious"
