"""Service settings, read from the environment when the app or worker starts (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    queue_name: str = "default"
    debug: bool = False
    #: the built frontend (Vite's dist) the app serves; empty: none (development: Vite does)
    web_dir: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        return cls(
            database_url=_async_driver(env.get("DATABASE_URL", DEFAULT_DATABASE_URL)),
            redis_url=env.get("REDIS_URL", DEFAULT_REDIS_URL),
            queue_name=env.get("SAQ_QUEUE_NAME", "default"),
            debug=env.get("APP_DEBUG", "").lower() in {"1", "true", "yes"},
            web_dir=env.get("WEB_DIR", ""),
        )
