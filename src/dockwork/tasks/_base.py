"""What every task shares: config and Compose for the project, running argv, clean errors."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import sys
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from invoke.exceptions import Exit

from dockwork.compose import Compose
from dockwork.config import Config, load_config
from dockwork.engine import check_engine
from dockwork.errors import DockworkError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from invoke.context import Context
    from invoke.runners import Result

P = ParamSpec("P")
R = TypeVar("R")


def clean_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`DockworkError` into invoke's ``Exit``: message, exit code, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DockworkError as exc:
            raise Exit(f"dockwork: {exc.message}", code=exc.exit_code) from exc

    return wrapper


def project(*, engine: bool = True) -> tuple[Config, Compose]:
    """The project's resolved configuration and its Compose wrapper.

    With ``engine`` (the default) also check that docker, its engine and Compose v2 answer,
    so a missing engine is one clear message instead of a raw docker error, and create
    .env from .env.example on first use.
    """
    config = load_config()
    if engine:
        check_engine()
        # every Compose command interpolates the files, which need .env in development
        ensure_env_file(config)
    return config, Compose.from_config(config)


def host_ids() -> str | None:
    """``uid:gid`` of this process (None where the platform has none, e.g. Windows)."""
    getuid = getattr(os, "getuid", None)
    getgid = getattr(os, "getgid", None)
    return f"{getuid()}:{getgid()}" if getuid is not None and getgid is not None else None


def compose_env() -> dict[str, str]:
    """Variables dockwork passes to Compose: the host uid/gid for the dev image's user."""
    ids = host_ids()
    if ids is None:
        return {}
    uid, gid = ids.split(":")
    return {"DOCKWORK_UID": uid, "DOCKWORK_GID": gid}


def run(
    c: Context,
    argv: Sequence[str],
    *,
    pty: bool | None = None,
    warn: bool = False,
    hide: bool = False,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Echo and run ``argv`` through invoke; output streams to the terminal unless ``hide``."""
    result: Result = c.run(
        shlex.join(argv),
        echo=True,
        pty=sys.stdout.isatty() if pty is None else pty,
        warn=warn,
        hide=hide,
        env={**compose_env(), **(env or {})},
    )
    return result


def remainder_args(c: Context, argv: Sequence[str] | None = None) -> list[str]:
    """The words after ``--``, exactly as given.

    invoke joins them into ``c.remainder`` with spaces, which loses quoting
    (``-k "a and b"``); the process's own argv still has them intact.
    """
    words = list(sys.argv if argv is None else argv)
    if "--" in words:
        return words[words.index("--") + 1 :]
    return shlex.split(c.remainder or "")


def split_names(names: str | None) -> list[str]:
    """``"app,worker"`` or ``"app worker"`` → ``["app", "worker"]``."""
    return [n for n in (names or "").replace(",", " ").split() if n]


def ensure_env_file(config: Config) -> None:
    """Create .env from .env.example on first use, and say so."""
    env_file = config.root / ".env"
    example = config.root / ".env.example"
    if env_file.exists() or not example.is_file():
        return
    shutil.copyfile(example, env_file)
    print(
        f"dockwork: created {env_file.name} from {example.name} (development values; edit it to "
        "change credentials or ports).",
        file=sys.stderr,
    )
