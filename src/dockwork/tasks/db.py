"""Database tasks, run in the stack's containers: `inv db.revision`, `db.upgrade`, ….

Alembic commands run in the (dev) migrate service as the host user, so files they write land
in the checkout owned by you. psql, pg_dump and pg_restore run in the db service with the
credentials from its own environment (POSTGRES_USER / POSTGRES_DB); the task's arguments
reach them as "$@", never interpolated by a shell on the host.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from invoke.exceptions import Exit
from invoke.tasks import task

from dockwork.tasks._base import clean_errors, host_ids, project, run

if TYPE_CHECKING:
    from invoke.context import Context
    from invoke.runners import Result

    from dockwork.compose import Command, Compose
    from dockwork.config import Config

#: scripts run by `sh -c` in the db container; "$0" is the program, "$@" its arguments
ON_DB = 'exec "$0" -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}" "$@"'
AS_USER = 'exec "$0" -U "$POSTGRES_USER" "$@"'
DB_NAME = 'echo "${POSTGRES_DB:-$POSTGRES_USER}"'
GENERATED = re.compile(r"Generating (\S+\.py)")
DUMP_IN_CONTAINER = "/tmp/dockwork.dump"  # noqa: S108 - inside the db container, removed after


def _alembic(config: Config, compose: Compose, *args: str) -> Command:
    """``compose run --rm -T --user UID:GID migrate <alembic_command> args``."""
    argv = [*config.alembic_command, *args]
    return compose.run(config.migrate_service, argv, tty=False, user=host_ids())


def _pg(compose: Compose, config: Config, script: str, *argv: str, tty: bool = False) -> Command:
    """``compose exec db sh -c SCRIPT argv…``."""
    return compose.exec(config.db_service, ["sh", "-c", script, *argv], tty=tty)


def _alembic_task(c: Context, *args: str) -> Result:
    config, compose = project()
    return run(c, _alembic(config, compose, *args), pty=False)


def _db_up(c: Context, config: Config, compose: Compose) -> str:
    """Start the database service healthy if it is not; return the database's name."""
    run(c, compose.up([config.db_service], wait_timeout=config.wait_timeout), pty=False)
    name = run(c, _pg(compose, config, DB_NAME), pty=False, hide=True).stdout.strip()
    return str(name)


def _table_count(c: Context, compose: Compose, config: Config) -> int:
    sql = (
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'"
    )
    result = run(c, _pg(compose, config, ON_DB, "psql", "-tAc", sql), pty=False, hide=True)
    return int(result.stdout.strip() or 0)


def _recreate(c: Context, compose: Compose, config: Config, name: str) -> None:
    maintenance = "--maintenance-db=postgres"
    run(
        c,
        _pg(compose, config, AS_USER, "dropdb", "--force", "--if-exists", maintenance, name),
        pty=False,
    )
    run(c, _pg(compose, config, AS_USER, "createdb", maintenance, name), pty=False)


@task(
    help={
        "message": "the revision's message (required)",
        "empty": "write an empty revision instead of autogenerating from the models",
    }
)
@clean_errors
def revision(c: Context, message: str = "", empty: bool = False) -> None:
    """Autogenerate a migration from the models (in the dev container, owned by you)."""
    if not message.strip():
        raise Exit(
            'dockwork: a message is required: `inv db.revision -m "add users.phone"`.', code=2
        )
    args = ["revision", "-m", message] + ([] if empty else ["--autogenerate"])
    result = _alembic_task(c, *args)
    match = GENERATED.search(result.stdout + result.stderr)
    if match is None:
        print(
            "dockwork: the models match the migrations; nothing was written "
            "(`--empty` writes a blank revision)."
        )
        return
    config, _ = project(engine=False)
    container_path = PurePosixPath(match.group(1))
    try:
        shown = Path(container_path.relative_to(config.container_workdir))
    except ValueError:
        shown = Path(str(container_path))
    print(f"dockwork: new migration: {shown}")


@task(help={"revision": "target revision (default: head)"})
@clean_errors
def upgrade(c: Context, revision: str = "head") -> None:
    """Apply migrations up to a revision (default head)."""
    _alembic_task(c, "upgrade", revision)


@task(positional=["revision"], help={"revision": "target revision (required: -1, base, or an id)"})
@clean_errors
def downgrade(c: Context, revision: str) -> None:
    """Revert migrations down to a revision (required: -1, base, or an id)."""
    _alembic_task(c, "downgrade", revision)


@task
@clean_errors
def history(c: Context) -> None:
    """List the migrations, newest first, marking the current one."""
    _alembic_task(c, "history", "--indicate-current")


@task
@clean_errors
def current(c: Context) -> None:
    """Show the revision the database is at."""
    _alembic_task(c, "current", "--verbose")


@task
@clean_errors
def check(c: Context) -> None:
    """Fail when the models and the migrations disagree (a migration is missing)."""
    _alembic_task(c, "check")


@task(help={"yes": "really drop the database (asked for on purpose)"})
@clean_errors
def reset(c: Context, yes: bool = False) -> None:
    """Drop and recreate the stack's database, then migrate (refuses without --yes)."""
    config, compose = project()
    name = _db_up(c, config, compose)
    if not yes:
        raise Exit(
            f"dockwork: this would drop database {name!r} (service {config.db_service!r}, "
            f"project {config.project_name!r}) and all its data. Nothing was changed. Run "
            "`inv db.reset --yes` to do it; `inv db.dump` first keeps a copy.",
            code=1,
        )
    _recreate(c, compose, config, name)
    run(c, _alembic(config, compose, "upgrade", "head"), pty=False)


@task(help={"command": "run one SQL command and exit (psql -c)"})
@clean_errors
def psql(c: Context, command: str = "") -> None:
    """Open psql on the stack's database (or run one command with -c)."""
    config, compose = project()
    _db_up(c, config, compose)
    args = ["-c", command] if command else []
    tty = not command and os.isatty(0)
    run(c, _pg(compose, config, ON_DB, "psql", *args, tty=tty), pty=tty)


@task(help={"file": "where to write (default: <project>-<timestamp>.dump)"})
@clean_errors
def dump(c: Context, file: str = "") -> None:
    """Dump the database (pg_dump custom format) to a file in the checkout."""
    config, compose = project()
    _db_up(c, config, compose)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = Path(file or f"{config.project_name}-{stamp}.dump")
    if target.exists():
        raise Exit(f"dockwork: {target} exists; give another file name.", code=1)
    run(
        c,
        _pg(compose, config, ON_DB, "pg_dump", "--format=custom", f"--file={DUMP_IN_CONTAINER}"),
        pty=False,
    )
    try:
        run(
            c,
            compose.command("cp", f"{config.db_service}:{DUMP_IN_CONTAINER}", str(target)),
            pty=False,
        )
    finally:
        run(
            c,
            compose.exec(config.db_service, ["rm", "-f", DUMP_IN_CONTAINER], tty=False),
            pty=False,
        )
    print(
        f"dockwork: wrote {target} ({target.stat().st_size:,} bytes); restore it with "
        f"`inv db.restore {target}`."
    )


@task(
    positional=["file"],
    help={"file": "a dump made by `inv db.dump`", "force": "replace a database that has tables"},
)
@clean_errors
def restore(c: Context, file: str, force: bool = False) -> None:
    """Restore a dump into the database (refuses a non-empty one without --force)."""
    source = Path(file)
    if not source.is_file():
        raise Exit(
            f"dockwork: {source} is not a file; give the path of an `inv db.dump` file.", code=2
        )
    config, compose = project()
    name = _db_up(c, config, compose)
    tables = _table_count(c, compose, config)
    if tables and not force:
        raise Exit(
            f"dockwork: database {name!r} has {tables} table(s); restoring would replace them. "
            "Nothing was changed. Use `inv db.restore FILE --force` to replace it (`inv db.dump` "
            "first keeps a copy).",
            code=1,
        )
    if tables:
        _recreate(c, compose, config, name)
    run(
        c, compose.command("cp", str(source), f"{config.db_service}:{DUMP_IN_CONTAINER}"), pty=False
    )
    try:
        run(
            c,
            _pg(
                compose,
                config,
                ON_DB,
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                DUMP_IN_CONTAINER,
            ),
            pty=False,
        )
    finally:
        run(
            c,
            compose.exec(config.db_service, ["rm", "-f", DUMP_IN_CONTAINER], tty=False),
            pty=False,
        )
    print(f"dockwork: restored {source} into {name!r}.")
