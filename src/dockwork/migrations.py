"""The project's migration CLI, run: each step's argv for a task, where new revision files
belong on the host, and whether the migration service has them mounted. The settings
themselves (presets, steps, placeholders) are :mod:`dockwork.migration_steps`."""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dockwork.errors import ConfigError, DockworkError, UsageError
from dockwork.migration_steps import (  # the settings, re-exported for the tasks
    KEYS,
    PRESETS,
    STEPS,
    TOOLS,
    Step,
    derived_migrate_command,
    fill,
    placeholders,
    program,
    template,
    validate,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from dockwork.config import Config


def command(config: Config, name: str, **values: str) -> list[str]:
    """Step ``name`` as argv; an error when it is not set (names the key) or the tool does
    not have it."""
    step = STEPS[name]
    argv = template(lambda key: getattr(config, key), name)
    if argv is None:
        raise ConfigError(
            f"`{step.key}` is not set, and migration_tool = {config.migration_tool!r} has no "
            f"preset for it, so `inv {step.task}` cannot run. Set {step.key} in [tool.dockwork] "
            f"to the argv of {step.what}"
            + (
                f" (dockwork fills {', '.join('{' + p + '}' for p in step.placeholders)})"
                if step.placeholders
                else ""
            )
            + ", or to [] if the tool has none."
        )
    if not argv:
        raise DockworkError(
            f"this project's migration tool has no {_bare(step.what)} (`{step.key} = []` in "
            f"[tool.dockwork]), so `inv {step.task}` cannot run."
        )
    for key, value in values.items():
        if (
            key == "revision"
            and value != "head"
            and not any("revision" in placeholders(step.key, w) for w in argv)
        ):
            raise UsageError(
                f"`{step.key}` ({' '.join(argv)}) takes no {{revision}}, so it cannot move to "
                f"{value!r}: it goes to the latest revision only."
            )
    return fill(argv, **values)


def _bare(what: str) -> str:
    """A step's description without its article: "a drift check" -> "drift check"."""
    return what.removeprefix("an ").removeprefix("a ")


def upgrade_to_head(config: Config) -> list[str]:
    """The tool's upgrade to "head", or ``migrate_command`` when it has no upgrade step."""
    argv = template(lambda key: getattr(config, key), "upgrade")
    return fill(argv, revision="head") if argv else list(config.migrate_command)


SKIP_DIRS = frozenset({"__pycache__", "node_modules", ".venv", "venv", ".git", ".nox", ".tox"})


def _dirs_named(base: Path, name: str, depth: int = 4) -> Iterator[Path]:
    if depth < 0 or not base.is_dir():
        return
    try:
        children = sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name in SKIP_DIRS or child.name.startswith("."):
            continue
        if child.name == name:
            yield child
        else:
            yield from _dirs_named(child, name, depth - 1)


def versions_dir(config: Config) -> Path | None:
    """Where new revision files belong on this machine: ``migration_versions``, else the one
    ``versions`` directory under ``template_inputs`` (alembic's layout); None when unknown."""
    if config.migration_versions:
        path = config.root / config.migration_versions
        if not path.is_dir():
            raise ConfigError(
                f"`migration_versions` is {config.migration_versions!r}, which is not a directory "
                f"under {config.root}. Set it in [tool.dockwork] to where new revision files "
                'belong, e.g. "migrations/versions".'
            )
        return path
    found: list[Path] = []
    for inputs in config.template_inputs:
        base = config.root / inputs
        if base.name == "versions" and base.is_dir():
            found.append(base)
        else:
            found += _dirs_named(base, "versions")
    unique = sorted(set(found))
    return unique[0] if len(unique) == 1 else None


def listing(directory: Path | None) -> set[Path]:
    """The files in ``directory`` (none when it is unknown), hidden ones left out."""
    if directory is None or not directory.is_dir():
        return set()
    return {p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")}


def added_files(diff: str) -> list[PurePosixPath]:
    """Paths ``docker diff`` reports as added (``A /path``), bytecode and hidden files left
    out. A hidden *directory* on the way is fine: an image that installs the project as a
    package keeps its migrations under ``.venv/…/site-packages`` (litestar-fullstack)."""
    added = []
    for line in diff.splitlines():
        kind, _, path = line.partition(" ")
        inside = PurePosixPath(path.strip())
        if kind != "A" or not inside.is_absolute():
            continue
        if "__pycache__" in inside.parts or inside.name.startswith(".") or inside.suffix == ".pyc":
            continue
        added.append(inside)
    return added


def host_path(config: Config, inside: PurePosixPath, versions: Path | None) -> Path | None:
    """Where a file the migrate container wrote belongs on this machine: under the project
    when it is under ``container_workdir``, else by its directory's name; with a known
    versions directory only files in it, otherwise only ``.py`` files in an existing
    directory. None: it is no revision dockwork can place."""
    candidates = []
    with contextlib.suppress(ValueError):  # not under the workdir
        candidates.append(config.root / inside.relative_to(config.container_workdir))
    if versions is not None:
        if inside.parent.name == versions.name:
            candidates.append(versions / inside.name)
        return next((p for p in candidates if p.parent == versions), None)
    return next((p for p in candidates if p.suffix == ".py" and p.parent.is_dir()), None)


def mounted_sources(resolved: Mapping[str, Any], service: str) -> list[Path]:
    """Host directories bind-mounted into ``service`` (from ``compose config``'s JSON)."""
    spec = (resolved.get("services") or {}).get(service) or {}
    return [
        Path(str(volume["source"]))
        for volume in spec.get("volumes") or []
        if isinstance(volume, dict) and volume.get("type") == "bind" and volume.get("source")
    ]


def is_mounted(resolved: Mapping[str, Any], service: str, path: Path) -> bool:
    """True when ``path`` on this machine is inside a bind mount of ``service``."""
    target = path.resolve()
    return any(target.is_relative_to(s.resolve()) for s in mounted_sources(resolved, service))


__all__ = [
    "KEYS",
    "PRESETS",
    "STEPS",
    "TOOLS",
    "Step",
    "added_files",
    "command",
    "derived_migrate_command",
    "fill",
    "host_path",
    "is_mounted",
    "listing",
    "mounted_sources",
    "placeholders",
    "program",
    "template",
    "upgrade_to_head",
    "validate",
    "versions_dir",
]
