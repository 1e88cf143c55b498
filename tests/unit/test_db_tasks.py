"""How the db tasks build their commands (MockContext): container, user, arguments."""

from __future__ import annotations

import os
import shlex

import pytest
from invoke.context import MockContext
from invoke.exceptions import Exit
from invoke.runners import Result

from dockwork.tasks import db

BASE = "docker compose -p demo -f compose.yaml -f compose.override.yaml"
IDS = f"{os.getuid()}:{os.getgid()}"
UP_DB = f"{BASE} up --detach --wait --wait-timeout 180 --remove-orphans db"
DB_NAME = f"{BASE} exec -T db sh -c " + shlex.quote(db.DB_NAME)


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))  # noqa: PTH120
    monkeypatch.setenv("DOCKWORK_PROJECT_NAME", "demo")
    monkeypatch.setattr("dockwork.tasks._base.check_engine", lambda: None)
    monkeypatch.setattr("dockwork.tasks._base.ensure_env_file", lambda config: None)


def alembic(*args: str) -> str:
    return f"{BASE} run --rm -T --user {IDS} migrate python -m app.db " + shlex.join(args)


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
    c = MockContext(run={UP_DB: Result(), DB_NAME: Result(stdout="app\n")})
    with pytest.raises(Exit) as excinfo:
        db.reset(c)
    assert "would drop database 'app'" in str(excinfo.value.message)
    assert ran(c) == [UP_DB, DB_NAME]


def test_psql_passes_the_command_through_untouched() -> None:
    query = "SELECT 'it''s'; DROP TABLE x; -- $HOME"
    cmd = f"{BASE} exec -T db sh -c " + shlex.join([db.ON_DB, "psql", "-c", query])
    c = MockContext(run={UP_DB: Result(), DB_NAME: Result(stdout="app"), cmd: Result()})
    db.psql(c, command=query)
    assert ran(c)[-1] == cmd
