"""Baked PostgreSQL images: the base image with a data directory initialised once.

``initdb`` costs ~0.5 s in every fresh container; a derived image carries its result, so
a cold start is create + start + ready. The image is keyed by the base image's id and the
initialisation (a new base image or other settings make a new one), labelled as
dockwork's, and made once per machine (a file lock serialises concurrent runs). Remove
them all with::

    docker image rm $(docker images -q --filter label=dev.dockwork.role=baked-postgres)

The server's password is made when the image is baked (it lives in the data directory)
and kept in an image label, readable by whoever can use the engine, i.e. not by other
users of the machine.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING

from dockwork.config import cache_dir
from dockwork.errors import ProvisionError
from dockwork.filelock import locked
from dockwork.testservers.containers import PASSWORD_VARIABLE, PG_BAKE

if TYPE_CHECKING:
    from dockwork.testservers.containers import ContainerSpec
    from dockwork.testservers.engine_api import Engine

LABEL = "dev.dockwork"
REPOSITORY = "dockwork-test-postgres"
ROLE = "baked-postgres"
PASSWORD_LABEL = f"{LABEL}.password"
BAKE_TIMEOUT = 120


def key(base_id: str, spec: ContainerSpec) -> str:
    """Names the baked image: the base image's id and how the data directory is made."""
    blob = json.dumps([base_id, PG_BAKE, dict(spec.environment), spec.user])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def baked_image(
    engine: Engine, spec: ContainerSpec, base_id: str, labels: dict[str, str]
) -> tuple[str, str]:
    """The baked image for ``spec`` (made now if missing) and the server password in it."""
    tag = f"{REPOSITORY}:{key(base_id, spec)}"
    found = engine.image(tag)
    if found is None:
        with locked(cache_dir() / f"bake-{key(base_id, spec)}.lock"):
            found = engine.image(tag)  # another run may have baked it while we waited
            if found is None:
                _bake(engine, spec, base_id, tag, labels)
                found = engine.image(tag)
    password = ((found or {}).get("Config") or {}).get("Labels", {}).get(PASSWORD_LABEL, "")
    if not password:
        raise ProvisionError(
            f"the baked image {tag} has no {PASSWORD_LABEL} label; remove it "
            f"(`docker image rm {tag}`) and run again, it is made anew."
        )
    return tag, str(password)


def _bake(
    engine: Engine, spec: ContainerSpec, base_id: str, tag: str, labels: dict[str, str]
) -> None:
    password = secrets.token_urlsafe(18)
    config = {
        "Image": spec.image,
        "Entrypoint": ["sh", "-c", PG_BAKE],
        "User": spec.user or "postgres",
        "Env": [f"{k}={v}" for k, v in spec.environment.items()]
        + [f"{PASSWORD_VARIABLE}={password}"],
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
                f"LABEL {PASSWORD_LABEL}={password}",
            ],
        )
    finally:
        engine.remove(cid)


__all__ = ["REPOSITORY", "ROLE", "baked_image", "key"]
