"""The development ``.env``: created from ``.env.example`` only where development runs.

Compose reads ``.env`` by itself, so a copy of the example's development credentials on a
production host would silently satisfy ``compose.yaml``'s ``${POSTGRES_PASSWORD:?…}``
guard. dockwork therefore creates it only when the development override is among the
compose files in use, and never readable by other users.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from dockwork.config import Config

ENV_NAME = ".env"
EXAMPLE_NAME = ".env.example"
MODE = 0o600
#: Compose's message for ``${NAME:?…}`` / ``${NAME?…}`` when NAME has no value
MISSING = re.compile(r"required variable (\w+) is missing a value")


def env_path(config: Config) -> Path:
    """The env file Compose reads for this project: ``env_file`` (from the project), else
    ``.env`` in Compose's project directory (the first compose file's)."""
    return config.root / config.env_file if config.env_file else config.compose_dir / ENV_NAME


def example_path(config: Config) -> Path:
    """``.env.example``, beside the ``.env`` it is copied to."""
    return env_path(config).with_name(EXAMPLE_NAME)


def ensure(config: Config) -> Path | None:
    """Create ``.env`` from ``.env.example`` (mode 0600) in development; return it if created."""
    target = env_path(config)
    example = example_path(config)
    if not config.development or target.exists() or not example.is_file():
        return None
    data = example.read_bytes()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    except FileExistsError:  # created meanwhile by a concurrent task: theirs stands
        return None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return target


#: a ``NAME=value`` line of an env file (``export NAME=…`` too)
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


def names(path: Path) -> list[str]:
    """The variables an env file assigns, in order."""
    return ASSIGNMENT.findall(path.read_text(encoding="utf-8", errors="replace"))


def values(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (quotes stripped; comments, ``export`` ignored;
    the last one wins); ``{}`` when it cannot be read."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    found = {}
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key and not key.startswith("#"):
            found[key.strip()] = value.strip().strip("'\"")
    return found


def behind_example(config: Config) -> list[str]:
    """Variables ``.env.example`` has that the development ``.env`` lacks (and the
    environment does not set): added to the example after ``.env`` was made from it."""
    target = env_path(config)
    example = example_path(config)
    if not config.development or not target.is_file() or not example.is_file():
        return []
    have = set(names(target))
    return [n for n in names(example) if n not in have and n not in os.environ]


def missing_variable_hint(output: str, config: Config) -> str | None:
    """One line on how to set a variable Compose says is missing, or None."""
    match = MISSING.search(output)
    if match is None:
        return None
    name = match.group(1)
    where = env_path(config).name
    if config.development:
        return (
            f"{name} has no value: add it to {where} (created from {EXAMPLE_NAME} on first "
            "use) or export it."
        )
    return (
        f"{name} has no value, and with {', '.join(config.compose_files)} (no "
        f"{config.dev_override}) dockwork never fills in development values: export {name}, "
        f"or put it in {where} (chmod 600), or in a secret manager that sets the environment."
    )


__all__ = [
    "behind_example",
    "ensure",
    "env_path",
    "example_path",
    "missing_variable_hint",
    "names",
]
