"""Database tasks, run in the stack's containers: `inv db.revision`, `db.upgrade`, ….

The migration tool's commands (alembic, Advanced Alchemy or the project's own: see
:mod:`dockwork.migrations`) run in the migrate service. Where the project is bind-mounted
into it, they run as the host user, so files they write land in the checkout owned by you;
where it is not (a production image, a compose file without the mount), `db.revision` runs
as the image's user in a container it keeps until it has copied the new files out. psql,
pg_dump and pg_restore run in the db service as the database user its Compose configuration
names (POSTGRES_USER, or the image's default), with the task's arguments passed as argv,
never through a shell.

Anything that replaces the database (restore, reset) builds the replacement aside, swaps it
in only when it is complete, and drops the old one last: a failure at any step leaves the
database as it was. Signals (Ctrl-C, SIGTERM, SIGHUP) are held back while the server is
changed and let through only during the long steps (copying, pg_restore, migrating), which
they end; whatever ended the task, :meth:`Swap.settle` then leaves one of two states, found
from the server itself: the database as it was, or the swap completed, accepting
connections either way, with no scratch database left.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from invoke.tasks import task

from dockwork import migrations, urls
from dockwork.compose import host_ids
from dockwork.errors import DockworkError, UsageError
from dockwork.tasks import _signals
from dockwork.tasks._base import clean_errors, compose_env, project, run, say
from dockwork.testing.databases import (
    quote_ident,  # one quoting of identifiers, shared with the tests' databases
)

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
        """Run a command built by :meth:`command` (echoed, never through a pty).

        While signals are held back it runs to its end whatever arrives, and raises nothing
        for a signal: the caller acts on one between steps (``_signals.checkpoint``).
        """
        if _signals.holding():
            result: Result = self.c.run(
                shlex.join(argv), echo=True, pty=False, warn=warn, hide=hide, env=compose_env()
            )
            return result
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

    def reopen(self, name: str) -> Result:
        """Allow connections to a database again (the caller checks ``.ok``)."""
        return self.sql(f"ALTER DATABASE {quote_ident(name)} ALLOW_CONNECTIONS true")

    def present(self, *names: str) -> dict[str, bool] | None:
        """Which of ``names`` exist, each with whether it accepts connections (None: the
        server did not answer)."""
        listed = ", ".join(quote_literal(n) for n in names)
        found = self.sql(
            f"SELECT datname, datallowconn FROM pg_database WHERE datname IN ({listed})"  # noqa: S608 - quoted literals
        )
        if not found.ok:
            return None
        rows = (line.rpartition("|") for line in found.stdout.splitlines() if "|" in line)
        return {name: allow == "t" for name, _, allow in rows}

    @contextlib.contextmanager
    def scratch_file(self) -> Iterator[str]:
        """A file name in the db container of this invocation's own, removed afterwards."""
        inside = f"/tmp/dockwork-{secrets.token_hex(6)}.dump"  # noqa: S108 - in the container
        try:
            yield inside
        finally:
            rm = self.compose.exec(self.config.db_service, ["rm", "-f", inside], tty=False)
            self.run(rm, warn=True)


def _failure(result: Result) -> str:
    """The last line a failed command printed."""
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1].strip() if lines else f"exit {result.exited}"


@dataclass
class Swap:
    """A replacement for the app's database, built in ``scratch`` and swapped in, the old one
    becoming ``old``; :func:`replacing` settles it whatever happens."""

    pg: Postgres
    scratch: str
    old: str
    #: what the app's database holds once swapped ("the restored data")
    new: str
    keep_old: bool = False
    #: the renames committed
    swapped: bool = False

    def swap(self) -> None:
        """Put the scratch database in the place of the app's, which becomes :attr:`old`.

        New connections are refused, open ones ended, then both renames happen in one
        transaction. Runs with signals held back: one that arrives before the renames
        undoes the swap, one after them lets it complete (:meth:`settle`).
        """
        pg = self.pg
        ident, literal = quote_ident(pg.name), quote_literal(pg.name)
        terminate = (
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE "  # noqa: S608 - quoted literal
            f"datname = {literal} AND pid <> pg_backend_pid()"
        )
        closed = pg.sql(f"ALTER DATABASE {ident} ALLOW_CONNECTIONS false; {terminate}")
        if closed.ok:
            _signals.checkpoint()  # closed, nothing renamed: undone by settle()
            renamed = pg.sql(
                f"ALTER DATABASE {ident} RENAME TO {quote_ident(self.old)}; "
                f"ALTER DATABASE {quote_ident(self.scratch)} RENAME TO {ident}"
            )
            self.swapped = renamed.ok
            if renamed.ok:
                return
        raise DockworkError(
            f"could not swap the new database in for {pg.name!r} "
            f"({_failure(renamed if closed.ok else closed)}). Stop what is connected to it "
            f"(`docker compose stop {pg.config.app_service}`) and try again."
        )

    def settle(self) -> tuple[str | None, bool]:
        """Leave one of two states, whatever happened: the app's database as it was, or the
        swap completed (the old one dropped, or kept with :attr:`keep_old`); either way it
        accepts connections and the scratch database is gone. Found from the server, not
        assumed. Returns the sentence saying which (None: nothing had been changed) and
        whether it all worked.
        """
        pg = self.pg
        with _signals.deferred():  # a second signal does not cut the cleanup short
            present = pg.present(pg.name, self.scratch, self.old)
            if present is None:
                unknown = (
                    f"the state of database {pg.name!r} could not be checked: `inv db.psql -c "
                    f"'\\l'` lists the databases ({self.scratch!r} is the scratch one, "
                    f"{self.old!r} the replaced one)"
                )
                return unknown, False
            swapped = self.swapped or self.old in present
            problems: list[str] = []
            if pg.name not in present:  # never: both renames are one transaction
                problems.append("it does not exist")
            elif not present[pg.name]:
                opened = pg.reopen(pg.name)
                if not opened.ok:
                    problems.append(f"it refuses connections ({_failure(opened)})")
            if swapped:
                if self.keep_old:
                    opened = pg.reopen(self.old)
                    tail = f"the old one is kept as {self.old!r}"
                    if not opened.ok:
                        tail += f" (closed to connections: {_failure(opened)})"
                else:
                    tail = self._drop(self.old, "the old one")
                state = f"the swap completed: database {pg.name!r} holds {self.new}"
            else:
                tail = (
                    self._drop(self.scratch, "the scratch database")
                    if self.scratch in present
                    else ""
                )
                if not tail and not problems and present.get(pg.name):
                    return None, True  # nothing had been changed
                state = f"database {pg.name!r} was not changed"
            accepts = "; ".join(problems) or "accepts connections"
            ok = not problems and "could not" not in tail
            return f"{state} and {accepts}" + (f"; {tail}" if tail else ""), ok

    def _drop(self, name: str, what: str) -> str:
        args = ("--force", "--if-exists", f"--maintenance-db={self.pg.maintenance}", name)
        dropped = self.pg.run(self.pg.command("dropdb", *args), warn=True, hide=True)
        if dropped.ok:
            return f"{what} {name!r} was dropped"
        return (
            f"{what} {name!r} could not be dropped ({_failure(dropped)}): "
            f"`inv db.psql -c 'DROP DATABASE \"{name}\"'` drops it"
        )


@contextlib.contextmanager
def replacing(pg: Postgres, what: str, new: str, *, keep_old: bool = False) -> Iterator[Swap]:
    """The block builds a replacement for the app's database (``swap.scratch``) and swaps it
    in; signals are held back in it except in ``_signals.interruptible()`` steps. Afterwards,
    whatever ended the block (a failure, a signal, success), :meth:`Swap.settle` leaves the
    server in one of its two states, and one ``dockwork:`` line says which.
    """
    swap = Swap(pg, aside(pg.name, what), aside(pg.name, f"before_{what}"), new, keep_old)
    with _signals.deferred():
        try:
            yield swap
        except (KeyboardInterrupt, _signals.Interrupted) as exc:
            signum = exc.signum if isinstance(exc, _signals.Interrupted) else signal.SIGINT
            state, _ = swap.settle()
            raise DockworkError(
                f"{what} interrupted by {signal.Signals(signum).name}: "
                f"{state or f'database {pg.name!r} was not changed'}.",
                exit_code=128 + signum,
            ) from None
        except DockworkError as exc:
            state, _ = swap.settle()
            raise DockworkError(
                exc.message + (f" {state[0].upper()}{state[1:]}." if state else ""),
                exit_code=exc.exit_code,
            ) from exc
        except BaseException:
            swap.settle()
            raise
        state, ok = swap.settle()
        if _signals.received:  # held back until the swap was complete
            signum = _signals.received[0]
            raise DockworkError(
                f"{what} interrupted by {signal.Signals(signum).name}: {state}.",
                exit_code=128 + signum,
            )
        if not ok:
            raise DockworkError(f"{what}: {state}.")


def _migration(config: Config, compose: Compose, argv: list[str]) -> Command:
    """``compose run --rm -T --user UID:GID migrate argv``."""
    return compose.run(config.migrate_service, argv, tty=False, user=host_ids())


def _step(c: Context, step: str, **values: str) -> Result:
    """Run one of the migration tool's commands (``migration_<step>``) in the migrate service."""
    config, compose = project()
    return run(
        c, _migration(config, compose, migrations.command(config, step, **values)), pty=False
    )


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
    """Autogenerate a migration from the models (in the migrate service; the file lands here)."""
    if not message.strip():
        raise UsageError('a message is required: `inv db.revision -m "add users.phone"`.')
    config, compose = project()
    argv = migrations.command(config, "empty_revision" if empty else "revision", message=message)
    versions = migrations.versions_dir(config)
    mounted = migrations.is_mounted(
        compose.resolved(), config.migrate_service, versions or config.root
    )
    before = migrations.listing(versions)
    # kept after it exits (no --rm), so what it wrote outside any bind mount can be copied out
    container = f"{config.project_name}-{config.migrate_service}-revision-{secrets.token_hex(4)}"
    cmd = compose.command("run").add_option("--name", container).add_flag("-T")
    # through a bind mount the file is written as you; without one, as the image's own user
    # (it owns the image's copy of the project), and `docker cp` then writes it here as you
    cmd.add_option("--user", host_ids() if mounted else None)
    cmd.add_args([config.migrate_service, *argv])
    try:
        result = run(c, cmd, pty=False, warn=True)
        if not result.ok:
            raise DockworkError(
                f"the revision command failed (exit {result.exited}; its error is above)."
                + ("" if mounted else " " + _not_mounted(config, versions)),
                exit_code=result.exited or 1,
            )
        copied = _copy_out(c, config, container, versions)
    finally:
        run(c, ["docker", "rm", "--force", container], pty=False, warn=True, hide=True)
    new = sorted((migrations.listing(versions) - before) | set(copied))
    reported = GENERATED.search(f"{result.stdout}\n{result.stderr}")
    if not new and reported and versions is None:  # no versions directory to list: its word
        host = migrations.host_path(config, PurePosixPath(reported.group(1)), None)
        new = [host] if host is not None and host.is_file() else []
    if not new and (reported or empty):
        said = f"reported writing {reported.group(1)}" if reported else "was to write a revision"
        raise DockworkError(
            f"the revision command {said} in the {config.migrate_service!r} container, but no "
            "new file arrived on this machine"
            + (f" in {_shown(versions)}" if versions else "")
            + f". {_not_mounted(config, versions)}"
        )
    nothing = (
        "the models match the migrations; nothing was written (`--empty` writes a blank revision)."
    )
    if not empty:  # alembic writes one even when autogenerate found no change
        for path in [p for p in new if p.suffix == ".py" and empty_revision(p.read_text())]:
            path.unlink()
            new.remove(path)
    if not new:  # the tool (or the project's env.py) skipped the empty revision
        say(nothing, out=True)
        return
    for path in new:
        say(f"new migration: {_shown(path)}", out=True)


def _shown(path: Path) -> str:
    """A host path as the user can type it: relative to the current directory when inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _not_mounted(config: Config, versions: Path | None) -> str:
    """What to do when the migrations are not where the container writes."""
    where = (
        _shown(versions)
        if versions
        else "the directory `migration_versions` names (set it in [tool.dockwork])"
    )
    return (
        f"When the migrations directory is not bind-mounted into the {config.migrate_service!r} "
        "service, the command runs on the image's copy of the project, as the image's user, "
        f"and dockwork copies new revision files out of the container into {where}; for that "
        "the image's user must be able to write its copy. Or mount the project into the "
        f"service, e.g. under `services: {config.migrate_service}: volumes:` in the development "
        f'compose file: "- .:{config.container_workdir}".'
    )


def _copy_out(c: Context, config: Config, container: str, versions: Path | None) -> list[Path]:
    """Copy the revision files ``container`` wrote outside any bind mount to this machine
    (``docker diff`` lists them); the host files it wrote, never replacing one."""
    diff = run(c, ["docker", "diff", container], pty=False, hide=True)
    copied: list[Path] = []
    for inside in migrations.added_files(diff.stdout):
        target = migrations.host_path(config, inside, versions)
        if target is None:
            continue
        with tempfile.TemporaryDirectory(prefix="dockwork-revision-") as staging:
            staged = Path(staging) / inside.name
            run(c, ["docker", "cp", f"{container}:{inside}", str(staged)], pty=False, hide=True)
            if not staged.is_file():
                continue
            try:
                with target.open("xb") as dst:  # never over a file that is there
                    dst.write(staged.read_bytes())
            except FileExistsError:
                raise DockworkError(
                    f"the revision command wrote {inside} in the container, but {_shown(target)} "
                    "exists on this machine already; it was not replaced. Rename or move it, "
                    "then run the command again."
                ) from None
        copied.append(target)
    return copied


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
    config, compose = project()
    argv = (
        migrations.upgrade_to_head(config)
        if revision == "head"
        else migrations.command(config, "upgrade", revision=revision)
    )
    run(c, _migration(config, compose, argv), pty=False)


@task(positional=["revision"], help={"revision": "target revision (required: -1, base, or an id)"})
@clean_errors
def downgrade(c: Context, revision: str) -> None:
    """Revert migrations down to a revision (required: -1, base, or an id)."""
    _step(c, "downgrade", revision=revision)


@task
@clean_errors
def history(c: Context) -> None:
    """List the migrations, newest first, marking the current one."""
    _step(c, "history")


@task
@clean_errors
def current(c: Context) -> None:
    """Show the revision the database is at."""
    _step(c, "current")


@task
@clean_errors
def check(c: Context) -> None:
    """Fail when the models and the migrations disagree (a migration is missing)."""
    _step(c, "check")


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
    with replacing(pg, "reset", "a new empty database migrated to head") as swap:
        url = urls.with_database(_migrate_url(compose, config), swap.scratch)
        pg.create(swap.scratch)
        argv = compose.run(
            config.migrate_service,
            migrations.upgrade_to_head(config),
            tty=False,
            user=host_ids(),
            env={config.database_url_env: None},  # by name: the URL's password is not echoed
        )
        with _signals.interruptible():
            migrated = run(c, argv, pty=False, warn=True, env={config.database_url_env: url})
        if not migrated.ok:
            raise DockworkError(
                f"migrating the new database failed (exit {migrated.exited}; the error is above).",
                exit_code=migrated.exited or 1,
            )
        swap.swap()
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
    with _signals.deferred():  # a finished dump is named whatever signal arrives
        keeps_modes = _reserve(partial)
        try:
            with pg.scratch_file() as inside, _signals.interruptible():
                pg.run(
                    pg.command("pg_dump", "--format=custom", f"--file={inside}", database=pg.name)
                )
                if keeps_modes:
                    pg.run(compose.command("cp", f"{config.db_service}:{inside}", str(partial)))
                else:  # `compose cp` sets the file's mode, which this filesystem refuses
                    with tempfile.TemporaryDirectory(prefix="dockwork-dump-") as staging:
                        staged = Path(staging) / target.name
                        pg.run(compose.command("cp", f"{config.db_service}:{inside}", str(staged)))
                        _copy_data(staged, partial)
        except (KeyboardInterrupt, _signals.Interrupted) as exc:
            partial.unlink(missing_ok=True)  # unfinished: never left behind
            signum = exc.signum if isinstance(exc, _signals.Interrupted) else signal.SIGINT
            raise DockworkError(
                f"dump interrupted by {signal.Signals(signum).name}: no file was written.",
                exit_code=128 + signum,
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        place(partial, target)
    wrote = f"wrote {target} ({target.stat().st_size:,} bytes)"
    if _signals.received:
        signum = _signals.received[0]
        raise DockworkError(
            f"dump stopped by {signal.Signals(signum).name} once complete: {wrote}.",
            exit_code=128 + signum,
        )
    say(f"{wrote}; restore it with `inv db.restore {shlex.quote(str(target))}`.", out=True)


def _reserve(partial: Path) -> bool:
    """Create ``partial`` (empty, never over a file) and tell whether its filesystem keeps
    Unix modes: vfat, exFAT and some SMB shares refuse a chmod (EPERM, ENOSYS)."""
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise UsageError(
            f"cannot write in {partial.parent} ({exc.strerror}); nothing was dumped.", exit_code=1
        ) from None
    try:
        partial.chmod(0o644)
        partial.chmod(0o600)
    except OSError:
        return False
    return True


def _copy_data(source: Path, partial: Path) -> None:
    """The bytes of ``source`` into ``partial``, on disk before it is named (no mode, no
    owner: the filesystem may have neither)."""
    with source.open("rb") as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


def place(partial: Path, target: Path) -> None:
    """Give the finished file ``partial`` the name ``target`` without ever replacing a file
    that appeared there meanwhile, and without ever losing it.

    A hard link where the filesystem has them. Where it has none (vfat and exFAT say EPERM,
    some SMB and network shares EOPNOTSUPP or EXDEV), the name is created exclusively and
    the file renamed over that empty reservation. A file that cannot be named stays as
    ``partial``, and the error says where it is.
    """
    try:
        os.link(partial, target)
    except FileExistsError:
        raise _unplaced(partial, f"{target} appeared while dumping") from None
    except OSError:
        _place_without_link(partial, target)
    else:
        partial.unlink(missing_ok=True)  # the file's second name


def _place_without_link(partial: Path, target: Path) -> None:
    try:
        reserved = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _unplaced(partial, f"{target} appeared while dumping") from None
    except OSError as exc:
        raise _unplaced(partial, f"{target} could not be created ({exc.strerror})") from None
    os.close(reserved)
    try:
        partial.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if target.stat().st_size == 0:  # still the empty reservation made above
                target.unlink()
        raise _unplaced(partial, f"it could not be renamed to {target} ({exc.strerror})") from None


def _unplaced(partial: Path, why: str) -> DockworkError:
    return DockworkError(
        f"{why}; the complete dump is kept as {partial}: move it where you want it."
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
    with (
        replacing(pg, "restore", "the restored data", keep_old=keep_old) as swap,
        pg.scratch_file() as inside,
    ):
        with _signals.interruptible():
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
        pg.create(swap.scratch)
        args = ("--no-owner", "--exit-on-error", f"--dbname={swap.scratch}", inside)
        with _signals.interruptible():
            restored = pg.run(pg.command("pg_restore", *args), warn=True)
        if not restored.ok:
            raise DockworkError(
                f"restoring {source} failed (pg_restore exit {restored.exited}; its error is "
                "above).",
                exit_code=restored.exited or 1,
            )
        # 3. swapped in; 4. the replaced database dropped last, or kept (by replacing())
        swap.swap()
    if keep_old:
        say(
            f"restored {source} into {pg.name!r}; the previous one is kept as {swap.old!r}.",
            out=True,
        )
    else:
        say(f"restored {source} into {pg.name!r}.", out=True)
