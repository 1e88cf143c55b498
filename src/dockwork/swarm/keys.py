"""The key that names a stack's Docker secrets: random, made once per stack on this machine,
kept out of the repository in the user's cache (``<cache>/swarm-keys/<stack>.key``, mode
0600 in a 0700 directory).

A secret's name carries an HMAC of its value under this key (see
:func:`dockwork.swarm.render.content_name`): a changed value gets a new name, so Swarm rolls
the services that use it; an unchanged one keeps its name, so nothing restarts. Without the
key, the name (which anyone who can run ``docker secret ls`` sees) gives no way to test
guesses of the value.

The key is per machine: a deploy of the same values from another machine (another cache)
names the secrets differently, which is one rolling update of the services that use them,
not an error. Copying the key file to that machine's cache keeps the names stable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from typing import TYPE_CHECKING

from dockwork.config import cache_dir
from dockwork.errors import DeployError

if TYPE_CHECKING:
    from pathlib import Path

#: bytes of key (HMAC-SHA256 takes up to 64 without hashing it first)
KEY_BYTES = 32
#: a stack name as Docker takes it: safe as a file name
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def key_dir() -> Path:
    """Where the stacks' keys are kept."""
    return cache_dir() / "swarm-keys"


def secret_key(stack: str, directory: Path | None = None) -> bytes:
    """The stack's key, made (atomically) the first time it is asked for."""
    if not _NAME.fullmatch(stack):
        raise ValueError(f"not a stack name: {stack!r}")
    where = key_dir() if directory is None else directory
    path = where / f"{stack}.key"
    try:
        _private_directory(where)
        key = _read(path)
        if key is None:
            _create(path)
            key = _read(path)
    except OSError as exc:
        raise DeployError(
            f"the key that names stack {stack!r}'s secrets cannot be kept at {path} "
            f"({exc.strerror or exc}). Make {where} a directory of yours (mode 0700), or point "
            "XDG_CACHE_HOME at one. Nothing was deployed."
        ) from exc
    if key is None:  # made and gone at once: someone else is at work in the directory
        raise DeployError(f"{path} vanished as it was made: check who else uses {where}.")
    return key


def _owner_problem(st: os.stat_result) -> str:
    """Why a key file or its directory cannot be trusted ("" when it can)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        return f"it belongs to uid {st.st_uid}, not to you (uid {getuid()})"
    if os.name != "nt" and stat.S_IMODE(st.st_mode) & 0o077:
        return f"others can reach it (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""


def _private_directory(directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    st = directory.lstat()
    problem = (
        "it is a symbolic link"
        if stat.S_ISLNK(st.st_mode)
        else "it is not a directory"
        if not stat.S_ISDIR(st.st_mode)
        else _owner_problem(st)
    )
    if problem:
        raise DeployError(
            f"{directory} holds the keys that name Swarm secrets, and {problem}. Remove it "
            "(dockwork makes it again, mode 0700; the stacks' secrets then get new names: one "
            "rolling update) or fix it. Nothing was deployed."
        )


def _read(path: Path) -> bytes | None:
    """The key in ``path`` (None: no such file), refusing a link, another owner, a file
    others can read, or one that holds no key."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        problem = "it is a symbolic link"
    else:
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            problem = (
                "it is not a regular file" if not stat.S_ISREG(st.st_mode) else _owner_problem(st)
            )
            text = handle.read(4 * KEY_BYTES).decode("ascii", "replace").strip()
        if not problem:
            try:
                key = bytes.fromhex(text)
            except ValueError:
                key = b""
            if len(key) == KEY_BYTES:
                return key
            problem = "it holds no key"
    raise DeployError(
        f"{path} holds the key that names this stack's Swarm secrets, and {problem}. Remove "
        "it (a new key is made: the secrets get new names, one rolling update) or fix it. "
        "Nothing was deployed."
    )


def _create(path: Path) -> None:
    """Write a new key where none is: into a file of its own (O_EXCL, 0600, no link
    followed), then linked into place, so no reader sees it half written and, of two
    deploys making it at once, both use the one linked first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another deploy's came first: theirs it is
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["KEY_BYTES", "key_dir", "secret_key"]
