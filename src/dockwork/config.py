"""``[tool.dockwork]`` resolved once into a frozen dataclass.

Precedence: explicit overrides (task arguments) > environment (``DOCKWORK_*``) >
``[tool.dockwork]`` in pyproject.toml > defaults. Nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, get_origin, get_type_hints

from dockwork.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "DOCKWORK_"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything project-specific that dockwork needs to know."""

    root: Path
    project_name: str = ""
    compose_files: tuple[str, ...] = ("compose.yaml", "compose.override.yaml")
    env_file: str | None = None
    profiles: tuple[str, ...] = ()
    app_service: str = "app"
    db_service: str = "db"
    migrate_service: str = "migrate"
    migrate_command: tuple[str, ...] = ("python", "-m", "app.db", "upgrade", "head")
    #: the migration tool's command line without a subcommand (alembic's CLI)
    alembic_command: tuple[str, ...] = ("python", "-m", "app.db")
    shell_command: tuple[str, ...] = ("bash",)
    #: where the dev image has the checkout mounted (maps container paths to host paths)
    container_workdir: str = "/app"
    test_paths: tuple[str, ...] = ("tests",)
    #: files whose content defines the migrated schema; the test template is keyed by them
    template_inputs: tuple[str, ...] = ("src",)
    wait_timeout: int = 180
    log_tail: int = 50

    @property
    def compose_paths(self) -> tuple[Path, ...]:
        """The compose files as absolute paths."""
        return tuple(self.root / f for f in self.compose_files)


#: keys that cannot be set from pyproject (they are derived)
_DERIVED = {"root"}
_FIELDS = {f.name: f for f in dataclasses.fields(Config) if f.name not in _DERIVED}
_HINTS = get_type_hints(Config)


def _kind(name: str) -> str:
    hint = _HINTS[name]
    if get_origin(hint) is tuple:
        return "list of strings"
    if hint is int:
        return "integer"
    if isinstance(hint, UnionType):
        return "string or null"
    return "string"


def _coerce(name: str, value: object, source: str) -> object:
    kind = _kind(name)
    if kind == "list of strings":
        if isinstance(value, str) and source.startswith("environment"):
            value = shlex.split(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind == "integer":
        if isinstance(value, str) and source.startswith("environment"):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    elif kind == "string or null":
        if value is None or isinstance(value, str):
            return value
    elif isinstance(value, str):
        return value
    article = "an" if kind[0] in "aeiou" else "a"
    raise ConfigError(
        f"{source}: `{name}` must be {article} {kind}"
        + (" greater than 0" if kind == "integer" else "")
        + f", got {value!r}. Fix it in {source}."
    )


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding a pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise ConfigError(
        f"no pyproject.toml found in {here} or any parent directory. Run this from inside "
        "the project, or create a pyproject.toml with a [tool.dockwork] table."
    )


def load_config(
    root: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_compose_files: bool = True,
) -> Config:
    """Resolve the configuration once: overrides > environment > pyproject > defaults."""
    root = find_root(root)
    env = os.environ if environ is None else environ
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}. Fix the file.") from exc
    table = data.get("tool", {}).get("dockwork", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.dockwork] must be a table.")

    values: dict[str, Any] = {}
    source = f"{pyproject} [tool.dockwork]"
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise ConfigError(
                f"{source}: unknown key `{key}`. Valid keys: {', '.join(sorted(_FIELDS))}."
            )
        values[name] = _coerce(name, value, source)
    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in env:
            values[name] = _coerce(name, env[env_name], f"environment variable {env_name}")
    for name, value in (overrides or {}).items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting `{name}`. Valid: {', '.join(sorted(_FIELDS))}.")
        if value is not None:
            values[name] = _coerce(name, value, f"argument `{name}`")

    if not values.get("project_name"):
        values["project_name"] = _default_project_name(root, env)
    config = Config(root=root, **values)
    missing = [str(p) for p in config.compose_paths if not p.is_file()]
    if missing and require_compose_files:
        raise ConfigError(
            f"compose file(s) not found: {', '.join(missing)}. Fix `compose_files` in "
            f"{source} (now {list(config.compose_files)})."
        )
    return config


def _default_project_name(root: Path, env: Mapping[str, str]) -> str:
    """Compose's own rule: COMPOSE_PROJECT_NAME, else the directory name, normalised."""
    name = env.get("COMPOSE_PROJECT_NAME") or root.name
    cleaned = "".join(c for c in name.lower() if c.isalnum() or c in "-_")
    return cleaned.lstrip("-_") or "dockwork"


__all__ = ["Config", "find_root", "load_config"]
