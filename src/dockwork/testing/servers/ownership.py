"""Who owns a test server, and whether that owner is gone.

A run records its identity with everything it starts: pid, the pid's start time (a
recycled pid is another process), the boot id (another kernel is another machine, or a
reboot) and the pid namespace (a pid means something only inside its namespace). Another
run judges an owner by its pid only when boot id and namespace match its own; otherwise
the owner is unverifiable and only a lease decides: the owner renews a heartbeat while it
lives, and a server whose heartbeat is older than the lease is an orphan. So a live run in
another container or on another machine is never touched, and a dead one is cleaned up.
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

#: how often a live run renews its servers' heartbeat (seconds)
HEARTBEAT_SECONDS = 20.0
#: an unverifiable owner is presumed gone after this long without a heartbeat (seconds);
#: at least the startup window (``service_timeout``) plus a margin, see :func:`lease`
MIN_LEASE_SECONDS = 3 * HEARTBEAT_SECONDS


def lease(service_timeout: float) -> float:
    """Seconds without a heartbeat after which an unverifiable owner counts as gone."""
    return max(MIN_LEASE_SECONDS, service_timeout + 30.0)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except OSError:
        return ""


def boot_id() -> str:
    """This kernel's boot id (Linux; "" elsewhere)."""
    return _read("/proc/sys/kernel/random/boot_id")


def pid_namespace() -> str:
    """This process's pid namespace, e.g. ``pid:[4026531836]`` (Linux; "" elsewhere)."""
    try:
        return str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return ""


def process_start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or "" where unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    # the command name (field 2) may contain spaces; fields after it are space-separated
    return stat.rsplit(")", 1)[1].split()[19]


class Verdict(enum.Enum):
    """What can be said of an owner from here."""

    ALIVE = "alive"
    GONE = "gone"
    UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True, slots=True)
class Owner:
    """A process that owns test servers."""

    pid: int
    start: str
    boot: str
    pidns: str
    host: str

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        pid = os.getpid()
        return cls(pid, process_start_time(pid), boot_id(), pid_namespace(), socket.gethostname())

    def to_labels(self, prefix: str) -> dict[str, str]:
        """As container labels (``<prefix>.pid`` …)."""
        return {f"{prefix}.{key}": str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_labels(cls, labels: dict[str, str], prefix: str) -> Owner | None:
        """Read back :meth:`to_labels`; None when the labels are not an owner's."""
        try:
            pid = int(labels.get(f"{prefix}.pid", ""))
        except ValueError:
            return None
        get = labels.get
        return cls(
            pid,
            get(f"{prefix}.start", ""),
            get(f"{prefix}.boot", ""),
            get(f"{prefix}.pidns", ""),
            get(f"{prefix}.host", ""),
        )

    def judge(self, me: Owner | None = None) -> Verdict:
        """Alive or gone when this owner can be checked from ``me``; else unverifiable."""
        me = me or Owner.current()
        if self.boot and me.boot:
            comparable = self.boot == me.boot and self.pidns == me.pidns
        else:  # no boot id (not Linux): the same host name is the best there is
            comparable = self.host == me.host
        if not comparable:
            return Verdict.UNVERIFIABLE
        return Verdict.ALIVE if _running(self.pid, self.start) else Verdict.GONE


def _running(pid: int, start: str) -> bool:
    """``pid`` runs and (where known) is the same process that recorded ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return not start or process_start_time(pid) in {"", start}


def orphaned(owner: Owner | None, heartbeat_age: float | None, lease_seconds: float) -> bool:
    """Whether servers of ``owner`` may be removed.

    ``heartbeat_age``: seconds since the owner last renewed its heartbeat (or since the
    server was created when it never did), None when unknown. Without an owner (reused
    servers) or an age, nothing is an orphan.
    """
    if owner is None:
        return False
    verdict = owner.judge()
    if verdict is Verdict.GONE:
        return True
    if verdict is Verdict.ALIVE or heartbeat_age is None:
        return False
    return heartbeat_age > lease_seconds


__all__ = [
    "HEARTBEAT_SECONDS",
    "Owner",
    "Verdict",
    "boot_id",
    "lease",
    "orphaned",
    "pid_namespace",
    "process_start_time",
]
