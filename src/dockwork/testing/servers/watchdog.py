"""Releases an embedded run's servers when the run's owner is gone.

Started (``python -m dockwork.testing.servers.watchdog RECORD``) by the process of a run that
starts the embedded servers when that process is not the run's owner, e.g. an xdist
worker: the servers must outlive the worker (its crash must not take them from the other
workers) and die with the run. It polls the owner named in the record; when the owner is
gone it releases the record (stops the servers, removes their directories). When the run
releases the record itself, the watchdog is among the processes it stops.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dockwork.testing.servers.embedded import Record, release_record
from dockwork.testing.servers.ownership import Owner, Verdict

POLL_SECONDS = 0.5


def watch(path: Path, poll: float = POLL_SECONDS) -> None:
    """Return when the record is gone, releasing it first if its owner went before it."""
    while True:
        record = Record.load(path)
        if record is None or record.owner is None:
            return
        if Owner(**record.owner).judge() is Verdict.GONE:
            release_record(path)
            return
        time.sleep(poll)


def main(argv: list[str]) -> int:
    """``watchdog RECORD``."""
    if len(argv) != 1:
        print("usage: python -m dockwork.testing.servers.watchdog RECORD", file=sys.stderr)  # noqa: T201
        return 2
    watch(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
