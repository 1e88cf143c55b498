"""What a project's compose files say, read as files (no Compose, no engine, no variables).

For the cheap inferences that run on every configuration load: which test servers a
project's tests need follows from the images its compose files name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

#: image names that mean PostgreSQL / Redis (official images, common variants and forks)
POSTGRES_IMAGES = ("postgres", "postgis", "timescale")
REDIS_IMAGES = ("redis", "valkey")


def kind_of_image(image: str) -> str | None:
    """``"postgres"``, ``"redis"`` or None for an image reference (variables left as text)."""
    text = image.lower()
    if any(name in text for name in POSTGRES_IMAGES):
        return "postgres"
    if any(name in text for name in REDIS_IMAGES):
        return "redis"
    return None


def services(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """The services of the compose files, merged shallowly by name (later files win)."""
    import yaml  # noqa: PLC0415 - only where the files are read

    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for name, service in (data.get("services") or {}).items():
            if isinstance(service, dict):
                merged.setdefault(str(name), {}).update(service)
    return merged


def server_kinds(paths: Iterable[Path]) -> tuple[str, ...]:
    """The test servers a project needs: those its compose files run (PostgreSQL first)."""
    kinds = {kind_of_image(str(s.get("image") or "")) for s in services(paths).values()}
    return tuple(k for k in ("postgres", "redis") if k in kinds)


__all__ = ["POSTGRES_IMAGES", "REDIS_IMAGES", "kind_of_image", "server_kinds", "services"]
