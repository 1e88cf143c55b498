"""Settings, read once at import: the environment, then ``../.env`` for what it lacks.

Like pydantic-settings with ``env_file="../.env"``: the file is found from the working
directory (the backend's), and a variable in the environment always wins over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

ENV_FILE = Path("../.env")


def _dotenv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    """The backend's configuration."""

    PROJECT_NAME: str
    ENVIRONMENT: str
    POSTGRES_SERVER: str
    POSTGRES_PORT: int
    POSTGRES_USER: str
    POSTGRES_PASSWORD: str
    POSTGRES_DB: str

    @property
    def SQLALCHEMY_DATABASE_URI(self) -> URL:  # noqa: N802 - the template's name
        return URL.create(
            "postgresql+psycopg",
            username=self.POSTGRES_USER,
            password=self.POSTGRES_PASSWORD,
            host=self.POSTGRES_SERVER,
            port=self.POSTGRES_PORT,
            database=self.POSTGRES_DB,
        )


def load() -> Settings:
    """The environment over the env file over the defaults."""
    values = {
        "PROJECT_NAME": "Backend shop",
        "ENVIRONMENT": "local",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_DB": "",
    }
    values |= _dotenv(ENV_FILE)
    values |= {k: v for k, v in os.environ.items() if k in Settings.__dataclass_fields__}
    missing = [k for k in Settings.__dataclass_fields__ if k not in values]
    if missing:
        raise RuntimeError(f"settings missing: {', '.join(missing)}")
    return Settings(
        PROJECT_NAME=values["PROJECT_NAME"],
        ENVIRONMENT=values["ENVIRONMENT"],
        POSTGRES_SERVER=values["POSTGRES_SERVER"],
        POSTGRES_PORT=int(values["POSTGRES_PORT"]),
        POSTGRES_USER=values["POSTGRES_USER"],
        POSTGRES_PASSWORD=values["POSTGRES_PASSWORD"],
        POSTGRES_DB=values["POSTGRES_DB"],
    )


settings = load()
