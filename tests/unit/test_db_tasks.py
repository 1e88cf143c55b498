"""How the db tasks build their commands (MockContext): container, user, arguments."""

from __future__ import annotations

import os
import re
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
    # a command these mocks fail is not followed by a real `docker compose version`
    monkeypatch.setattr("dockwork.tasks._base.compose_problem", lambda argv: None)
    monkeypatch.setattr("dockwork.envfile.ensure", lambda config: None)
    monkeypatch.setattr(Compose, "resolved", lambda self: RESOLVED)


def alembic(*args: str) -> str:
    return f"{BASE} run --rm -T --user {IDS} migrate python -m app.db " + shlex.join(args)


def on_db(*argv: str) -> str:
    return f"{BASE} exec -T db " + shlex.join(argv)


def ran(c: MockContext) -> list[str]:
    return [call.args[0] for call in c.run.call_args_list]  # type: ignore[attr-defined]


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of its own (alembic's layout, migrations/versions), the container name fixed."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dockwork]\ncompose_files = ["compose.yaml"]\nalembic_command = ["alembic"]\n'
        'template_inputs = ["migrations"]\ncontainer_workdir = "/srv"\n'
    )
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "migrations" / "versions" / "0001_items.py").write_text(REVISION)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(db.secrets, "token_hex", lambda n: "feed")
    return tmp_path


REVISION = 'def upgrade() -> None:\n    op.add_column("items", sa.Column("price"))\n'
NO_CHANGE = 'def upgrade() -> None:\n    """x"""\n    pass\n'
SHOP = "docker compose -p demo -f compose.yaml"
NAME = "demo-migrate-revision-feed"
DIFF = f"docker diff {NAME}"
RM = f"docker rm --force {NAME}"
CP = re.compile(rf"docker cp {NAME}:(\S+) (\S+)")


def revision_run(*args: str, user: bool) -> str:
    """The revision command in a container db.revision keeps until it has looked inside."""
    as_you = f" --user {IDS}" if user else ""
    return f"{SHOP} run --name {NAME} -T{as_you} migrate " + shlex.join(args)


class Scripted(MockContext):
    """MockContext whose commands also do to this machine's files what the real ones would:
    ``effects`` maps a command to a function of it."""

    def __init__(self, results: dict[Any, Any], effects: dict[str, Any]) -> None:
        super().__init__(run=results)
        self._set("effects", effects)

    def run(self, command: str, **kwargs: Any) -> Any:
        if command in self.effects:
            self.effects[command](command)
        if (copy := CP.fullmatch(command)) is not None:  # `docker cp` from the container
            Path(copy.group(2)).write_text(self.effects["inside"][copy.group(1)])
        return super().run(command, **kwargs)


@pytest.fixture
def mounted(shop: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project bind-mounted into the migrate service, as `compose config` says it."""
    bind = {"type": "bind", "source": str(shop), "target": "/srv"}
    services = {**RESOLVED["services"], "migrate": {"volumes": [bind]}}
    monkeypatch.setattr(Compose, "resolved", lambda self: {"services": services})
    return shop


def test_revision_through_a_bind_mount_runs_as_you_and_prints_the_host_path(
    mounted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmd = revision_run("alembic", "revision", "-m", "add price", "--autogenerate", user=True)
    new = mounted / "migrations" / "versions" / "0002_add_price.py"
    c = Scripted(
        {
            cmd: Result(stdout=f"Generating /srv/{new.relative_to(mounted)} ...  done"),
            DIFF: Result(),
            RM: Result(),
        },
        {cmd: lambda _: new.write_text(REVISION)},
    )
    db.revision(c, message="add price")
    assert ran(c) == [cmd, DIFF, RM]
    assert "new migration: migrations/versions/0002_add_price.py" in capsys.readouterr().out


def test_revision_without_the_mount_copies_the_file_out_as_you(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the image's copy of the project elsewhere than container_workdir (a production image)
    cmd = revision_run("alembic", "revision", "-m", "add price", "--autogenerate", user=False)
    inside = "/opt/shop/migrations/versions/0002_add_price.py"
    diff = (
        "C /opt/shop/migrations/versions\n"
        f"A {inside}\n"
        "A /opt/shop/migrations/versions/__pycache__\n"
        "A /opt/shop/migrations/versions/__pycache__/0002_add_price.cpython-312.pyc\n"
        "A /tmp/scratch.py\n"
    )
    c = Scripted(
        {
            cmd: Result(stdout=f"Generating {inside} ...  done"),
            DIFF: Result(stdout=diff),
            CP: Result(),
            RM: Result(),
        },
        {"inside": {inside: REVISION}},
    )
    db.revision(c, message="add price")
    commands = ran(c)
    assert commands[:2] == [cmd, DIFF]
    assert CP.fullmatch(commands[2]) is not None
    assert commands[3:] == [RM], "only the revision is copied, and the container removed"
    new = shop / "migrations" / "versions" / "0002_add_price.py"
    assert new.read_text() == REVISION
    assert new.stat().st_uid == os.getuid()
    assert "new migration: migrations/versions/0002_add_price.py" in capsys.readouterr().out


@pytest.mark.usefixtures("shop")
def test_revision_left_in_the_container_is_a_failure_that_says_what_to_mount() -> None:
    cmd = revision_run("alembic", "revision", "-m", "add price", "--autogenerate", user=False)
    inside = "/opt/elsewhere/0002_add_price.py"  # nowhere dockwork can place it
    c = Scripted(
        {
            cmd: Result(stdout=f"Generating {inside} ...  done"),
            DIFF: Result(stdout=f"A {inside}\n"),
            RM: Result(),
        },
        {},
    )
    with pytest.raises(Exit) as excinfo:
        db.revision(c, message="add price")
    message = str(excinfo.value.message)
    assert excinfo.value.code == 1
    assert f"reported writing {inside}" in message
    assert "no new file arrived on this machine in migrations/versions" in message
    assert '"- .:/srv"' in message
    assert ran(c) == [cmd, DIFF, RM], "the container is removed all the same"


@pytest.mark.usefixtures("shop")
def test_revision_command_failing_removes_its_container_and_keeps_its_exit_code() -> None:
    cmd = revision_run("alembic", "revision", "-m", "add price", "--autogenerate", user=False)
    c = Scripted({cmd: Result(exited=3, stderr="PermissionError"), RM: Result()}, {})
    with pytest.raises(Exit) as excinfo:
        db.revision(c, message="add price")
    assert excinfo.value.code == 3
    assert "not bind-mounted" in str(excinfo.value.message)
    assert ran(c) == [cmd, RM]


@pytest.mark.parametrize(("written", "expect_file"), [(None, False), (NO_CHANGE, False)])
def test_revision_with_no_change_writes_nothing(
    mounted: Path, capsys: pytest.CaptureFixture[str], written: str | None, expect_file: bool
) -> None:
    cmd = revision_run("alembic", "revision", "-m", "nothing", "--autogenerate", user=True)
    new = mounted / "migrations" / "versions" / "0002_nothing.py"
    effects = {cmd: lambda _: new.write_text(written)} if written else {}
    c = Scripted({cmd: Result(), DIFF: Result(), RM: Result()}, effects)
    db.revision(c, message="nothing")
    assert "nothing was written" in capsys.readouterr().out
    assert new.exists() is expect_file, "alembic's empty autogenerated revision is removed"


@pytest.mark.usefixtures("mounted")
def test_empty_revision_that_writes_no_file_fails() -> None:
    cmd = revision_run("alembic", "revision", "-m", "blank", user=True)
    c = Scripted({cmd: Result(), DIFF: Result(), RM: Result()}, {})
    with pytest.raises(Exit) as excinfo:
        db.revision(c, message="blank", empty=True)
    assert "was to write a revision" in str(excinfo.value.message)


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


AA = {"DOCKWORK_MIGRATION_TOOL": "advanced-alchemy", "DOCKWORK_MIGRATION_PROGRAM": "app database"}


@pytest.mark.parametrize(
    ("task", "kwargs", "args"),
    [
        (db.upgrade, {}, ("upgrade", "head", "--no-prompt")),
        (db.upgrade, {"revision": "0001"}, ("upgrade", "0001", "--no-prompt")),
        (db.downgrade, {"revision": "-1"}, ("downgrade", "-1", "--no-prompt")),
        (db.history, {}, ("history", "--indicate-current")),
        (db.current, {}, ("show-current-revision", "--verbose")),
        (db.check, {}, ("check",)),
    ],
)
def test_advanced_alchemy_tasks(
    monkeypatch: pytest.MonkeyPatch, task: object, kwargs: dict[str, str], args: tuple[str, ...]
) -> None:
    for name, value in AA.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCKWORK_MIGRATE_COMMAND", raising=False)
    cmd = f"{BASE} run --rm -T --user {IDS} migrate app database " + shlex.join(args)
    c = MockContext(run={cmd: Result()})
    task(c, **kwargs)  # type: ignore[operator]
    assert ran(c) == [cmd]


def test_advanced_alchemy_revision(
    mounted: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in AA.items():
        monkeypatch.setenv(name, value)
    auto = ("make-migrations", "-m", "add price", "--autogenerate", "--no-prompt")
    blank = ("make-migrations", "-m", "blank", "--no-autogenerate", "--no-prompt")
    auto_cmd = revision_run("app", "database", *auto, user=True)
    blank_cmd = revision_run("app", "database", *blank, user=True)
    versions = mounted / "migrations" / "versions"
    c = Scripted(
        {auto_cmd: Result(), blank_cmd: Result(), DIFF: Result(), RM: Result()},
        {
            auto_cmd: lambda _: (versions / "0002_add_price.py").write_text(REVISION),
            blank_cmd: lambda _: (versions / "0003_blank.py").write_text(NO_CHANGE),
        },
    )
    db.revision(c, message="add price")
    db.revision(c, message="blank", empty=True)
    assert ran(c) == [auto_cmd, DIFF, RM, blank_cmd, DIFF, RM]
    out = capsys.readouterr().out
    assert "new migration: migrations/versions/0002_add_price.py" in out
    assert "new migration: migrations/versions/0003_blank.py" in out


def test_a_command_the_tool_lacks_fails_and_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKWORK_MIGRATION_TOOL", "custom")
    monkeypatch.setenv("DOCKWORK_MIGRATION_UPGRADE", "./manage up {revision}")
    with pytest.raises(Exit) as excinfo:
        db.check(MockContext())
    assert excinfo.value.code == 2
    assert "`migration_check` is not set" in str(excinfo.value.message)


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
