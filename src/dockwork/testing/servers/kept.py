"""Test servers kept between runs (``DOCKWORK_REUSE=1``): list them, stop them.

A kept server has no owning run, so nothing removes it by itself: this finds this
project's kept servers of both backends (the embedded backend's records, the Docker
containers labelled ``reuse=1`` with this project's name) and stops them. It never
touches a server of another project, or a run's own servers while that run lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockwork import urls
from dockwork.private import cache_dir, read_secret
from dockwork.testing.servers.base import Servers

if TYPE_CHECKING:
    from dockwork.config import Config
    from dockwork.testing.servers.engine_api import Engine


@dataclass(frozen=True, slots=True)
class Kept:
    """One kept server: which backend, what it is, where it answers."""

    backend: str
    kind: str
    where: str
    ident: str

    def describe(self) -> str:
        """One line for the task's listing."""
        return f"{self.backend:8} {self.kind:8} {self.where}"


@dataclass(frozen=True, slots=True)
class Found:
    """What was found, and what could not be looked at (an engine that did not answer)."""

    servers: list[Kept]
    notes: list[str]


def _embedded(project: str) -> list[Kept]:
    from dockwork.testing.servers.embedded import Record, state_dir  # noqa: PLC0415

    found = []
    for path in sorted(state_dir(project).glob("reuse-*.json")):
        record = Record.load(path)
        text = read_secret(path.with_suffix(".servers"))
        servers = Servers.from_json(text) if text else None
        for process in (record.processes if record else []) or [{"kind": "?"}]:
            kind = str(process.get("kind", "?"))
            url = servers.url(kind) if servers else None
            where = urls.mask(url) if url else f"pid {process.get('pid', '?')}"
            found.append(Kept("embedded", kind, where, str(path)))
    return found


def _containers(engine: Engine, project: str) -> list[dict[str, Any]]:
    from dockwork.testing.servers.docker import LABEL, ROLE  # noqa: PLC0415

    labels = [f"{LABEL}.project={project}", f"{LABEL}.role={ROLE}", f"{LABEL}.reuse=1"]
    return engine.containers(labels)


def _docker(project: str) -> tuple[list[Kept], list[str]]:
    from dockwork.testing.servers.docker import LABEL, connect  # noqa: PLC0415

    engine, why_not = connect(timeout=10)
    if engine is None:
        return [], [f"no Docker engine answers ({why_not}): kept containers were not looked at"]
    found = []
    for container in _containers(engine, project):
        labels = container.get("Labels") or {}
        name = str((container.get("Names") or ["?"])[0]).lstrip("/")
        state = str(container.get("State", "?"))
        kind = str(labels.get(f"{LABEL}.service", "?"))
        found.append(Kept("docker", kind, f"container {name} ({state})", str(container["Id"])))
    return found, []


def find(config: Config) -> Found:
    """This project's kept servers, of both backends."""
    docker, notes = _docker(config.project_name)
    return Found(_embedded(config.project_name) + docker, notes)


def _cache_files(project: str) -> list[Path]:
    """The Docker backend's notes of where kept containers answer (see ``reuse_cache``)."""
    pattern = re.compile(rf"reuse-{re.escape(project)}(-[0-9a-f]{{12}})+\.json")
    return [p for p in cache_dir().glob("reuse-*.json") if pattern.fullmatch(p.name)]


def stop(config: Config) -> Found:
    """Stop this project's kept servers; returns what was stopped (and what was not looked
    at). A failure to remove one is a :class:`ProvisionError` naming it."""
    from dockwork.errors import ProvisionError  # noqa: PLC0415
    from dockwork.testing.servers import docker as docker_backend  # noqa: PLC0415
    from dockwork.testing.servers.embedded import release_record  # noqa: PLC0415

    found = find(config)
    for path in sorted({k.ident for k in found.servers if k.backend == "embedded"}):
        release_record(Path(path))
        Path(path).with_suffix(".servers").unlink(missing_ok=True)
    ids = [k.ident for k in found.servers if k.backend == "docker"]
    if ids:
        engine, _ = docker_backend.connect(timeout=10)
        failed = docker_backend.remove(engine, ids) if engine is not None else ids
        if failed:
            raise ProvisionError(f"could not remove kept test containers: {'; '.join(failed)}.")
    for note in _cache_files(config.project_name):
        note.unlink(missing_ok=True)
    return found


__all__ = ["Found", "Kept", "find", "stop"]
