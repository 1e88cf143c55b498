"""Files and directories no other local user can have made or changed.

dockwork keeps state where other users of the machine can also write (``/dev/shm``, the
temp directory, a shared ``XDG_CACHE_HOME``): a directory someone else created there
could hold a planted data directory, configuration or binary that dockwork would then
use, as root. So every directory dockwork keeps is made 0700 (0711 where a server running
as another user must pass through it), and one that already exists is used only when it
is a real directory (not a symlink), owned by the expected user, and writable by nobody
else; anything else is refused with a message saying what to remove. Files holding
secrets are created 0600 in one step and replaced atomically; lock files are opened
without following symlinks.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from dockwork.errors import DockworkError

PRIVATE = 0o700


class UnsafePathError(DockworkError):
    """A path dockwork keeps state in was made or changed by someone else."""

    exit_code = 3


def _refuse(path: Path, why: str) -> UnsafePathError:
    return UnsafePathError(
        f"{path} {why}, so dockwork will not use it: another local user could have made it "
        "to plant files there. Check what it holds, remove it (`rm -rf` as its owner or "
        "root), and run again; dockwork then makes it anew, private to you."
    )


def check_dir(path: Path, *, owner: int | None = None) -> None:
    """``path`` is a real directory owned by ``owner`` (default: this user) that no one
    else can write to; :class:`UnsafePathError` otherwise."""
    expected = os.geteuid() if owner is None else owner
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise _refuse(path, "is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "is not a directory")
    if info.st_uid != expected:
        raise _refuse(path, f"is owned by uid {info.st_uid}, not uid {expected}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _refuse(path, f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o})")


def private_dir(path: Path, *, mode: int = PRIVATE, owner: int | None = None) -> Path:
    """``path`` as a directory of this user's (or ``owner``'s) with ``mode``: made if
    missing (its parents too, 0700), checked with :func:`check_dir` if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE)
    try:
        path.mkdir(mode)
    except FileExistsError:
        pass
    else:
        if owner is not None and owner != os.geteuid():
            os.chown(path, owner, owner)
    check_dir(path, owner=owner)
    if stat.S_IMODE(os.lstat(path).st_mode) != mode:  # an older, looser one of ours
        path.chmod(mode)
    return path


def cache_dir() -> Path:
    """dockwork's cache, ``$XDG_CACHE_HOME/dockwork`` (default ``~/.cache/dockwork``):
    private to this user, checked each time."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return private_dir(Path(base) / "dockwork")


def cache_path(*parts: str) -> Path:
    """A private directory under :func:`cache_dir`, each level made or checked."""
    path = cache_dir()
    for part in parts:
        path = private_dir(path / part)
    return path


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symlink at ``path`` (a clear error, not ELOOP)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError:
        if path.is_symlink():
            raise _refuse(path, "is a symbolic link") from None
        raise


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, mode 0600 from the first byte, replacing it atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as out:  # mkstemp makes it 0600, O_EXCL
            out.write(text)
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def read_secret(path: Path) -> str | None:
    """A secret file's text, or None when missing; refused when it is a symlink, not
    this user's, or readable by others."""
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise _refuse(path, f"is not private to uid {os.geteuid()}")
        return handle.read()


__all__ = [
    "UnsafePathError",
    "cache_dir",
    "cache_path",
    "check_dir",
    "open_nofollow",
    "private_dir",
    "read_secret",
    "write_secret",
]
