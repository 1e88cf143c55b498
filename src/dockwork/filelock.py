"""An exclusive lock on a file, shared by processes of this machine (POSIX ``flock``)."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from dockwork.private import check_dir, open_nofollow, private_dir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while in the block; another process asking for
    it waits. The lock file is created 0600, never through a symlink, in a directory of
    this user's that no one else can write to (made or checked: :mod:`dockwork.private`)."""
    import fcntl  # noqa: PLC0415 - POSIX only, needed only here

    if path.parent.exists():
        check_dir(path.parent)
    else:
        private_dir(path.parent)
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["locked"]
