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
    so a missing engine is one clear message instead of a raw docker error.
    """
    config = load_config()
    if engine:
        check_engine()
    return config, Compose.from_config(config)


def compose_env() -> dict[str, str]:
    """Variables dockwork passes to Compose: the host uid/gid for the dev image's user."""
    getuid = getattr(os, "getuid", None)
    getgid = getattr(os, "getgid", None)
    env: dict[str, str] = {}
    if getuid is not None and getgid is not None:
        env = {"DOCKWORK_UID": str(getuid()), "DOCKWORK_GID": str(getgid())}
    return env


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
