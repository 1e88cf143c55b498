"""Database tasks, run in the stack's containers: `inv db.revision`, `db.upgrade`, ….

Alembic commands run in the (dev) migrate service as the host user, so files they write land
in the checkout owned by you. psql, pg_dump and pg_restore run in the db service as the
database user its Compose configuration names (POSTGRES_USER, or the image's default), with
the task's arguments passed as argv, never through a shell.

Anything that replaces the database (restore, reset) builds the replacement aside, swaps it
in only when it is complete, and drops the old one last: a failure at any step leaves the
database as it was.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import secrets
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from invoke.tasks import task

from dockwork import urls
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks._base import clean_errors, host_ids, project, run, say

if TYPE_CHECKING:
    from collections.abc import Iterator

    from invoke.context import Context
    from invoke.runners import Result

    from dockwork.compose import Command, Compose
    from dockwork.config import Config

GENERATED = re.compile(r"Generating (\S+\.py)")
TABLES = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%'"
)


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A PostgreSQL string literal, quoted."""
    return "'" + value.replace("'", "''") + "'"


def aside(name: str, what: str) -> str:
    """``<name>_<what>_<UTC time>`` within PostgreSQL's 63-byte limit on names."""
    suffix = f"{what}_{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    return f"{name[: 63 - len(suffix) - 1]}_{suffix}"


@dataclass
class Postgres:
    """The stack's PostgreSQL, reached with ``compose exec`` in the db service."""

    c: Context
    config: Config
    compose: Compose
    user: str = "postgres"
    name: str = "postgres"

    @classmethod
    def up(cls, c: Context, config: Config, compose: Compose) -> Postgres:
        """Start the db service healthy if it is not; credentials from its configuration."""
        resolved = compose.resolved()
        service = (resolved.get("services") or {}).get(config.db_service) or {}
        env: dict[str, Any] = service.get("environment") or {}
        user = str(env.get("POSTGRES_USER") or "postgres")
        run(c, compose.up([config.db_service], wait_timeout=config.wait_timeout), pty=False)
        return cls(c, config, compose, user, str(env.get("POSTGRES_DB") or user))

    @property
    def maintenance(self) -> str:
        """A database to connect to while the app's is renamed (never that one itself)."""
        return "template1" if self.name == "postgres" else "postgres"

    def command(self, program: str, *args: str, database: str | None = None) -> Command:
        """``compose exec -T db <program> -U user [-d database] args``."""
        argv = [program, "-U", self.user, *(["-d", database] if database else []), *args]
        return self.compose.exec(self.config.db_service, argv, tty=False)

    def run(self, argv: Command, *, warn: bool = False, hide: bool = False) -> Result:
        """Run a command built by :meth:`command` (echoed, never through a pty)."""
        return run(self.c, argv, pty=False, warn=warn, hide=hide)

    def sql(self, sql: str, *, database: str | None = None) -> Result:
        """SQL in one transaction, stopping at the first error; the caller checks ``.ok``."""
        args = ("-v", "ON_ERROR_STOP=1", "-tAc", sql)
        return self.run(
            self.command("psql", *args, database=database or self.maintenance), warn=True, hide=True
        )

    def table_count(self) -> int:
        """Tables in the app's database."""
        return int(
            self.run(
                self.command("psql", "-tAc", TABLES, database=self.name), hide=True
            ).stdout.strip()
            or 0
        )

    def create(self, name: str) -> None:
        """An empty database."""
        self.run(self.command("createdb", f"--maintenance-db={self.maintenance}", name))

    def drop(self, name: str) -> None:
        """Drop a database if it exists (connections to it are ended)."""
        args = ("--force", "--if-exists", f"--maintenance-db={self.maintenance}", name)
        self.run(self.command("dropdb", *args))

    def swap(self, replacement: str, old: str) -> None:
        """Put ``replacement`` in the place of the app's database, which becomes ``old``.

        New connections are refused, open ones ended, then both renames happen in one
        transaction. On failure the app's database is opened again and left as it was.
        """
        ident = quote_ident(self.name)
        literal = quote_literal(self.name)
        terminate = (
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE "  # noqa: S608 - quoted literal
            f"datname = {literal} AND pid <> pg_backend_pid()"
        )
        closed = self.sql(f"ALTER DATABASE {ident} ALLOW_CONNECTIONS false; {terminate}")
        renamed = closed.ok and self.sql(
            f"ALTER DATABASE {ident} RENAME TO {quote_ident(old)}; "
            f"ALTER DATABASE {quote_ident(replacement)} RENAME TO {ident}"
        )
        if renamed and renamed.ok:
            return
        self.sql(f"ALTER DATABASE {ident} ALLOW_CONNECTIONS true")
        self.drop(replacement)
        failure = renamed or closed
        raise DockworkError(
            f"could not swap the new database in for {self.name!r} "
            f"({(failure.stderr or failure.stdout).strip() or 'psql failed'}). Database "
            f"{self.name!r} was not changed. Stop what is connected to it (`docker compose stop "
            f"{self.config.app_service}`) and try again."
        )

    def reopen(self, name: str) -> None:
        """Allow connections to a database :meth:`swap` closed (a kept old one)."""
        self.sql(f"ALTER DATABASE {quote_ident(name)} ALLOW_CONNECTIONS true")

    @contextlib.contextmanager
    def scratch_file(self) -> Iterator[str]:
        """A file name in the db container of this invocation's own, removed afterwards."""
        inside = f"/tmp/dockwork-{secrets.token_hex(6)}.dump"  # noqa: S108 - in the container
        try:
            yield inside
        finally:
            rm = self.compose.exec(self.config.db_service, ["rm", "-f", inside], tty=False)
            run(self.c, rm, pty=False, warn=True)


def _alembic(config: Config, compose: Compose, *args: str) -> Command:
    """``compose run --rm -T --user UID:GID migrate <alembic_command> args``."""
    argv = [*config.alembic_command, *args]
    return compose.run(config.migrate_service, argv, tty=False, user=host_ids())


def _alembic_task(c: Context, *args: str) -> Result:
    config, compose = project()
    return run(c, _alembic(config, compose, *args), pty=False)


def _migrate_url(compose: Compose, config: Config) -> str:
    """The database URL the migrate service gets (its resolved environment)."""
    services = compose.resolved().get("services") or {}
    environment = (services.get(config.migrate_service) or {}).get("environment") or {}
    url = environment.get(config.database_url_env)
    if not url:
        raise UsageError(
            f"the {config.migrate_service!r} service has no {config.database_url_env} in its "
            "environment, so dockwork cannot point its migrations at another database. Set "
            "`database_url_env` in [tool.dockwork] to the variable it uses."
        )
    return str(url)


def _local(path: str) -> Path:
    """An absolute host path: `compose cp` never reads a ':' in it as `service:path`."""
    return Path(path).expanduser().resolve()


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
        raise UsageError('a message is required: `inv db.revision -m "add users.phone"`.')
    args = ["revision", "-m", message] + ([] if empty else ["--autogenerate"])
    result = _alembic_task(c, *args)
    match = GENERATED.search(result.stdout + result.stderr)
    nothing = (
        "the models match the migrations; nothing was written (`--empty` writes a blank revision)."
    )
    if match is None:  # the project's env.py already skipped the empty revision
        say(nothing, out=True)
        return
    config, _ = project(engine=False)
    container_path = PurePosixPath(match.group(1))
    try:
        shown = Path(container_path.relative_to(config.container_workdir))
    except ValueError:
        shown = Path(str(container_path))
    written = config.root / shown
    if not empty and written.is_file() and empty_revision(written.read_text()):
        written.unlink()  # alembic writes one even when autogenerate found no change
        say(nothing, out=True)
        return
    say(f"new migration: {shown}", out=True)


def empty_revision(source: str) -> bool:
    """True when a revision's ``upgrade()`` does nothing (a docstring and ``pass`` at most)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            return all(
                isinstance(stmt, ast.Pass)
                or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
                for stmt in node.body
            )
    return False


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


@task(help={"yes": "really replace the database (asked for on purpose)"})
@clean_errors
def reset(c: Context, yes: bool = False) -> None:
    """Replace the stack's database with an empty, migrated one (refuses without --yes)."""
    config, compose = project()
    pg = Postgres.up(c, config, compose)
    if not yes:
        raise UsageError(
            f"this would drop database {pg.name!r} (service {config.db_service!r}, project "
            f"{config.project_name!r}) and all its data. Nothing was changed. Run "
            "`inv db.reset --yes` to do it; `inv db.dump` first keeps a copy.",
            exit_code=1,
        )
    # built aside and migrated first; swapped in only when that worked
    scratch, old = aside(pg.name, "reset"), aside(pg.name, "before_reset")
    url = urls.with_database(_migrate_url(compose, config), scratch)
    pg.create(scratch)
    argv = compose.run(
        config.migrate_service,
        [*config.alembic_command, "upgrade", "head"],
        tty=False,
        user=host_ids(),
        env={config.database_url_env: None},  # by name: the URL's password is not echoed
    )
    migrated = run(c, argv, pty=False, warn=True, env={config.database_url_env: url})
    if not migrated.ok:
        pg.drop(scratch)
        raise DockworkError(
            f"migrating the new database failed (exit {migrated.exited}; the error is above). "
            f"Database {pg.name!r} was not changed.",
            exit_code=migrated.exited or 1,
        )
    pg.swap(scratch, old)
    pg.drop(old)
    say(f"{pg.name!r} is now an empty database migrated to head.", out=True)


@task(help={"command": "run one SQL command and exit (psql -c)"})
@clean_errors
def psql(c: Context, command: str = "") -> None:
    """Open psql on the stack's database (or run one command with -c)."""
    config, compose = project()
    pg = Postgres.up(c, config, compose)
    args = ["-c", command] if command else []
    tty = not command and os.isatty(0)
    argv = compose.exec(config.db_service, ["psql", "-U", pg.user, "-d", pg.name, *args], tty=tty)
    run(c, argv, pty=tty)


@task(help={"file": "where to write (default: <project>-<timestamp>.dump)"})
@clean_errors
def dump(c: Context, file: str = "") -> None:
    """Dump the database (pg_dump custom format) to a file; never half-writes it."""
    config, compose = project()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = _local(file or f"{config.project_name}-{stamp}.dump")
    if target.exists():
        raise UsageError(f"{target} exists; give another file name.", exit_code=1)
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} is not a directory; give a path in an existing one.")
    pg = Postgres.up(c, config, compose)
    partial = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    with pg.scratch_file() as inside:
        try:
            pg.run(pg.command("pg_dump", "--format=custom", f"--file={inside}", database=pg.name))
            pg.run(compose.command("cp", f"{config.db_service}:{inside}", str(partial)))
            try:  # a link, not a rename: never replaces a file that appeared meanwhile
                os.link(partial, target)
            except FileExistsError:
                raise UsageError(
                    f"{target} appeared while dumping; the dump was not kept."
                ) from None
        finally:
            partial.unlink(missing_ok=True)
    say(
        f"wrote {target} ({target.stat().st_size:,} bytes); restore it with "
        f"`inv db.restore {shlex.quote(str(target))}`.",
        out=True,
    )


@task(
    positional=["file"],
    help={
        "file": "a dump made by `inv db.dump`",
        "force": "replace a database that has tables",
        "keep_old": "keep the replaced database as <db>_before_restore_<time> (default: drop it)",
    },
)
@clean_errors
def restore(c: Context, file: str, force: bool = False, keep_old: bool = False) -> None:
    """Restore a dump: checked, restored aside, then swapped in; on failure nothing changes."""
    source = _local(file)
    if not source.is_file():
        raise UsageError(f"{source} is not a file; give the path of an `inv db.dump` file.")
    config, compose = project()
    pg = Postgres.up(c, config, compose)
    tables = pg.table_count()
    if tables and not force:
        raise UsageError(
            f"database {pg.name!r} has {tables} table(s); restoring would replace them. Nothing "
            "was changed. Use `inv db.restore FILE --force` to replace it (`inv db.dump` first "
            "keeps a copy).",
            exit_code=1,
        )
    unchanged = f"Database {pg.name!r} was not changed."
    scratch, old = aside(pg.name, "restore"), aside(pg.name, "before_restore")
    with pg.scratch_file() as inside:
        pg.run(compose.command("cp", str(source), f"{config.db_service}:{inside}"))
        # 1. a file pg_restore cannot read is refused before anything changes
        listed = pg.run(pg.command("pg_restore", "--list", inside), warn=True, hide=True)
        if not listed.ok:
            reason = (listed.stderr or listed.stdout).strip().splitlines()
            raise DockworkError(
                f"{source} is not a dump pg_restore can read"
                + (f" ({reason[-1]})" if reason else "")
                + f". {unchanged} Give a file written by `inv db.dump` (pg_dump --format=custom)."
            )
        # 2. restored aside, into a scratch database
        pg.create(scratch)
        args = ("--no-owner", "--exit-on-error", f"--dbname={scratch}", inside)
        restored = pg.run(pg.command("pg_restore", *args), warn=True)
        if not restored.ok:
            pg.drop(scratch)
            raise DockworkError(
                f"restoring {source} failed (pg_restore exit {restored.exited}; its error is "
                f"above). {unchanged} The scratch database {scratch!r} was removed.",
                exit_code=restored.exited or 1,
            )
    # 3. swapped in; 4. the replaced database dropped last, or kept
    pg.swap(scratch, old)
    if keep_old:
        pg.reopen(old)
        say(f"restored {source} into {pg.name!r}; the previous one is kept as {old!r}.", out=True)
    else:
        pg.drop(old)
        say(f"restored {source} into {pg.name!r}.", out=True)
