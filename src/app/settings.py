"""Service settings, read from the environment when the app or worker starts (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_DATABASE_URL = "postgresql+asyncpg://app:app@127.0.0.1:15432/app"
DEFAULT_REDIS_URL = "redis://127.0.0.1:16379/0"


def _async_driver(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` forms and select asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def _setting(env: Mapping[str, str], name: str, default: str) -> str:
    """``name`` from the environment, or from the file ``<name>_FILE`` names (a Docker or
    Kubernetes secret mounted as a file); both set is an error, not a guess."""
    path = env.get(f"{name}_FILE")
    if path and env.get(name):
        msg = f"both {name} and {name}_FILE are set: keep one."
        raise ValueError(msg)
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return env.get(name, default)


def _sweep_seconds(raw: str) -> int:
    """``OUTBOX_SWEEP_SECONDS``: whole seconds from 1 to 59 (the sweep runs at those seconds
    of each minute); 5 when unset."""
    value = raw.strip()
    if not value:
        return 5
    if not value.isdigit() or not 1 <= int(value) <= 59:  # noqa: PLR2004 - a minute's seconds
        msg = f"OUTBOX_SWEEP_SECONDS is {raw!r}: set it to a whole number of seconds, 1 to 59."
        raise ValueError(msg)
    return int(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    queue_name: str = "default"
    debug: bool = False
    #: the built frontend (Vite's dist) the app serves; empty: none (development: Vite does)
    web_dir: str = ""
    #: how often the worker's sweep sends emails whose enqueue failed, and how long a new
    #: outbox row is left to the API's own enqueue before the sweep takes it
    outbox_sweep_seconds: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=_async_driver(_setting(env, "DATABASE_URL", DEFAULT_DATABASE_URL)),
            redis_url=_setting(env, "REDIS_URL", DEFAULT_REDIS_URL),
            queue_name=env.get("SAQ_QUEUE_NAME", "default"),
            debug=env.get("APP_DEBUG", "").lower() in {"1", "true", "yes"},
            web_dir=env.get("WEB_DIR", ""),
            outbox_sweep_seconds=_sweep_seconds(env.get("OUTBOX_SWEEP_SECONDS", "")),
        )
