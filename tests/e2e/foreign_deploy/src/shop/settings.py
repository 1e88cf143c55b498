"""Settings, read once at import: the environment (Compose's env_file in the containers),
then a ``.env`` in the working directory for what the environment lacks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _dotenv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            found[key.strip()] = value.strip().strip("'\"")
    return found


@dataclass(frozen=True)
class Settings:
    environment: str
    database_url: str
    database_echo: bool


def load() -> Settings:
    values = _dotenv(Path(".env")) | dict(os.environ)
    return Settings(
        environment=values.get("SHOP_ENVIRONMENT", "development"),
        database_url=values.get(
            "DATABASE_URL", "postgresql+asyncpg://shop:shop@127.0.0.1:15432/shop"
        ),
        database_echo=values.get("DATABASE_ECHO", "false").lower() in {"1", "true", "yes"},
    )


settings = load()
