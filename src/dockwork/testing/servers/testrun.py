"""One test run's servers, shared by all its processes through a directory.

The run's top process (pytest without xdist, the xdist controller, a nox session) begins
the run; the first process that needs servers starts them under a file lock and records
where they answer; every other process of the run reads that record. The top process
renews the servers' heartbeat while it lives and releases them at the end. Nothing starts
until a test asks (or, with ``test_env`` naming a server, until pytest sets those
variables, before any conftest is imported), so a run whose tests use no servers needs no
engine at all.

Which backend the run uses is decided once (:meth:`Run.decision`, by pytest's header or
the first process that needs servers) and recorded beside the servers: the engine is
asked whether it answers once per run, then only renewed by the heartbeat.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from dockwork.errors import DockworkError, ProvisionError, boundary
from dockwork.filelock import locked
from dockwork.testing.servers.base import Heartbeat, Servers
from dockwork.testing.servers.ownership import HEARTBEAT_SECONDS, Owner, Verdict

if TYPE_CHECKING:
    from dockwork.config import Config
    from dockwork.testing.servers.discovery import Decision

PREFIX = "dockwork-run-"
SERVERS = "servers.json"
FAILURE = "failure.json"
OWNER = "owner.json"
DECISION = "decision.json"
HINT = (
    "Nothing was left running. Run again; if it persists, DOCKWORK_TEST_BACKEND picks "
    "another backend, or DOCKWORK_TEST_DATABASE_URL / DOCKWORK_TEST_REDIS_URL name servers "
    "you run for tests."
)


class Run:
    """A run: its id (names its databases), its owner, and the servers once started."""

    def __init__(self, directory: Path, run_id: str, owner: Owner) -> None:
        self.directory = directory
        self.id = run_id
        self.owner = owner
        self._heartbeat: Heartbeat | None = None

    @classmethod
    def begin(cls, owner: Owner | None = None) -> Run:
        """A new run owned by this process (or ``owner``), with a directory of its own;
        the directories of this user's runs that died without ending are removed first."""
        owner = owner or Owner.current()
        reap_directories()
        directory = Path(tempfile.mkdtemp(prefix=PREFIX))
        run = cls(directory, f"{owner.pid}_{secrets.token_hex(3)}", owner)
        (directory / OWNER).write_text(json.dumps({"id": run.id, "owner": asdict(owner)}))
        return run

    @classmethod
    def join(cls, directory: str | Path) -> Run:
        """The run another process began (an xdist worker joining its controller's run)."""
        path = Path(directory)
        data = json.loads((path / OWNER).read_text())
        return cls(path, str(data["id"]), Owner(**data["owner"]))

    def recorded(self) -> Servers | None:
        """The servers, if a process of the run started them."""
        path = self.directory / SERVERS
        return Servers.from_json(path.read_text()) if path.is_file() else None

    def decision(self, config: Config) -> Decision:
        """Which backend this run uses: decided by the first process to ask (probing the
        engine once, within ``engine_timeout``), read from the run's record by every later
        one. Every process, the deciding one too, gets the decision as the record gives it,
        so all of them reach the engine alike (the probe's short deadline is not kept for
        the servers' own calls)."""
        from dockwork.testing.servers import discovery  # noqa: PLC0415 - only when needed

        path = self.directory / DECISION
        with locked(self.directory / "decision.lock"):
            if not path.is_file():
                decided = discovery.decide(config, engine_timeout=config.engine_timeout)
                path.write_text(decided.to_json())
            return discovery.Decision.from_json(path.read_text())

    def servers(self, config: Config) -> Servers:
        """Start the run's servers once (whichever process asks first), else read them."""
        with locked(self.directory / "lock"):
            recorded = self.recorded()
            if recorded is not None:
                return recorded
            failure = self.directory / FAILURE
            if failure.is_file():  # one attempt per run: every process reports the same error
                data = json.loads(failure.read_text())
                raise ProvisionError(str(data["message"]), exit_code=int(data["code"]))
            from dockwork.testing.servers import discovery  # noqa: PLC0415 - only when needed

            try:
                with boundary(ProvisionError, "starting the test servers failed", HINT):
                    decided = self.decision(config)
                    backend = discovery.discover(config, owner=self.owner, decision=decided)
                    servers = backend.start()
                # which process started them: the servers outlive it (they are the run's)
                details = servers.details | {"started_by": str(os.getpid())}
                servers = dataclasses.replace(servers, details=details)
            except DockworkError as exc:
                failure.write_text(json.dumps({"message": exc.message, "code": exc.exit_code}))
                raise
            (self.directory / SERVERS).write_text(servers.to_json())
            return servers

    def keep_alive(self) -> None:
        """Renew the servers' heartbeat while this (top) process lives."""
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(self._beat, HEARTBEAT_SECONDS).start()

    def _beat(self) -> None:
        servers = self.recorded()
        if servers is not None:
            from dockwork.testing.servers import discovery  # noqa: PLC0415

            discovery.renew(servers)

    def end(self) -> None:
        """Release what the run started and remove its directory (the top process, once)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
        try:
            servers = self.recorded()
            if servers is not None:
                from dockwork.testing.servers import discovery  # noqa: PLC0415

                discovery.release(servers, wait=False)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def reap_directories(parent: Path | None = None) -> list[Path]:
    """Remove the directories of runs whose top process is gone (killed before it could
    end the run): only this user's own (owner checked, symlinks not followed), and only
    when the owner can be judged from here and is gone; their servers are reaped by the
    backends. The directories removed."""
    parent = parent or Path(tempfile.gettempdir())
    uid = os.getuid()
    reaped = []
    for path in parent.glob(f"{PREFIX}*"):
        try:
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
                continue
            data = json.loads((path / OWNER).read_text())
            owner = Owner(**data["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a run's, another user's, or one still being begun
        if owner.judge() is Verdict.GONE:
            shutil.rmtree(path, ignore_errors=True)
            reaped.append(path)
    return reaped


__all__ = ["Run", "reap_directories"]
