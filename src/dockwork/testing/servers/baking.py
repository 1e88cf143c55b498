"""Baked PostgreSQL images: the base image with a data directory initialised once.

``initdb`` costs ~0.5 s in every fresh container; a derived image carries its result, so
a cold start is create + start + ready. The image is keyed by the base image's id and the
initialisation (a new base image or other settings make a new one), labelled as
dockwork's, and made once per machine (a file lock serialises concurrent runs). Remove
them all with::

    docker image rm $(docker images -q --filter label=dev.dockwork.role=baked-postgres)

The image holds no password (not in its data directory, its environment or its labels):
its role can log in over TCP only once a container has set its own password at start (see
``containers.PG_BAKED_START``), so every run's server has a password of its own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING

from dockwork.config import cache_dir
from dockwork.errors import ProvisionError
from dockwork.filelock import locked
from dockwork.kinds.containers import BAKED_DATA, LABEL, PG_BAKE

if TYPE_CHECKING:
    from dockwork.kinds.containers import ContainerSpec
    from dockwork.testing.servers.engine_api import Engine

REPOSITORY = "dockwork-test-postgres"
ROLE = "baked-postgres"


def _environment(spec: ContainerSpec) -> dict[str, str]:
    """The baking container's environment: the server's, the data directory made where the
    image keeps it (a server copies it from there onto a tmpfs of its own as it starts)."""
    return {**spec.environment, "PGDATA": BAKED_DATA}


def key(base_id: str, spec: ContainerSpec) -> str:
    """Names the baked image: the base image's id and how the data directory is made."""
    blob = json.dumps([base_id, PG_BAKE, _environment(spec), spec.user])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def baked_image(engine: Engine, spec: ContainerSpec, base_id: str, labels: dict[str, str]) -> str:
    """The baked image for ``spec`` (made now if missing)."""
    tag = f"{REPOSITORY}:{key(base_id, spec)}"
    found = engine.image(tag)
    if found is None:
        with locked(cache_dir() / f"bake-{key(base_id, spec)}.lock"):
            found = engine.image(tag)  # another run may have baked it while we waited
            if found is None:
                _bake(engine, spec, base_id, tag, labels)
    return tag


def _bake(
    engine: Engine, spec: ContainerSpec, base_id: str, tag: str, labels: dict[str, str]
) -> None:
    config = {
        "Image": spec.image,
        "Entrypoint": ["sh", "-c", PG_BAKE],
        "User": spec.user or "postgres",
        "Env": [f"{k}={v}" for k, v in _environment(spec).items()],
        "Labels": labels,
    }
    cid = engine.create(f"dockwork-bake-{secrets.token_hex(4)}", config)
    try:
        engine.start(cid)
        code = engine.wait(cid)
        if code != 0:
            raise ProvisionError(
                f"initialising a data directory in {spec.image} failed (exit {code}):\n"
                f"{engine.logs(cid).rstrip() or '(no output)'}\nThe image needs initdb and "
                "postgres on PATH and a postgres user; otherwise set DOCKWORK_POSTGRES_INIT="
                "entrypoint."
            )
        repository, _, name = tag.partition(":")
        engine.commit(
            cid,
            repository,
            name,
            [
                f"LABEL {LABEL}.role={ROLE}",
                f"LABEL {LABEL}.base={base_id}",
            ],
        )
    finally:
        engine.remove(cid)


__all__ = ["REPOSITORY", "ROLE", "baked_image", "key"]
