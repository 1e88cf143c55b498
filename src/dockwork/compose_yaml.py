"""What a project's compose files say, read as files (no Compose, no engine, no variables).

For the cheap inferences that run on every configuration load: which test servers a
project's tests need follows from the images its compose files name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockwork import kinds

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

#: image names that mean PostgreSQL / Redis (the registry's, see dockwork.kinds)
POSTGRES_IMAGES = kinds.POSTGRES.compose_images
REDIS_IMAGES = kinds.REDIS.compose_images


def kind_of_image(image: str) -> str | None:
    """The built-in test-server kind (``"postgres"``, ``"redis"``) an image reference means,
    or None (variables left as text)."""
    return kinds.kind_of_image(image)


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
    """The test servers a project needs: the kinds its compose files run (in the registry's
    order: PostgreSQL first)."""
    found = {kind_of_image(str(s.get("image") or "")) for s in services(paths).values()}
    return tuple(k for k in kinds.KINDS if k in found)


__all__ = ["POSTGRES_IMAGES", "REDIS_IMAGES", "kind_of_image", "server_kinds", "services"]
