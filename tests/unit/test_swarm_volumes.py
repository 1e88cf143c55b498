"""Which data of a Compose project a stack would share: the rendered stack's mounts against
those of the Compose projects' containers (the engine's side is tested for real in
tests/e2e/test_swarm.py)."""

from __future__ import annotations

from typing import Any

from dockwork.swarm.cluster import Mount, shared_data, stack_mounts
from dockwork.swarm.render import render
from tests.unit.test_swarm_render import plan, resolved


def rendered_with(volumes: list[dict[str, Any]], declared: dict[str, Any]) -> dict[str, Any]:
    doc = resolved()
    doc["services"]["db"]["volumes"] = volumes
    doc["volumes"] = declared
    return render(doc, plan()).stack


def used(kind: str, source: str, *, writable: bool = True) -> Mount:
    return Mount(kind, source, writable, "legacy", "legacy-db-1, exited")


def test_volumes_are_checked_under_the_name_the_engine_gives_them() -> None:
    stack = rendered_with(
        [
            {"type": "volume", "source": "db-data", "target": "/data"},
            {"type": "volume", "source": "named", "target": "/named"},
            {"type": "volume", "source": "outside", "target": "/outside", "read_only": True},
            {"type": "bind", "source": "/srv/shop/pgdata/", "target": "/pg"},
            {"type": "volume", "target": "/anonymous"},
            {"type": "tmpfs", "target": "/run/scratch"},
        ],
        {
            "db-data": {"name": "shop_db-data"},
            "named": {"name": "legacy-pgdata"},
            "outside": {"name": "backups", "external": True},
        },
    )
    assert stack["volumes"]["named"] == {"name": "legacy-pgdata"}, "the renderer keeps it"
    assert stack_mounts("shop", stack) == [
        Mount("volume", "shop_db-data"),
        Mount("volume", "legacy-pgdata"),
        Mount("volume", "backups", writable=False),
        Mount("path", "/srv/shop/pgdata"),
    ]


def test_what_a_compose_container_writes_is_shared_data() -> None:
    wanted = [Mount("volume", "legacy-pgdata"), Mount("path", "/srv/shop/pgdata")]
    assert shared_data(wanted, [used("volume", "legacy-pgdata")], {}) == [
        "volume legacy-pgdata (Compose project legacy: container legacy-db-1, exited)"
    ]
    for other in ("/srv/shop/pgdata", "/srv/shop", "/srv/shop/pgdata/16/main"):
        assert shared_data(wanted, [used("path", other)], {}) == [
            "host path /srv/shop/pgdata (Compose project legacy: container legacy-db-1, exited)"
        ], other
    # a volume Compose created, no container on it now: `up` would start one again
    assert shared_data(wanted, [], {"legacy-pgdata": "legacy"}) == [
        "volume legacy-pgdata (created by Compose project legacy)"
    ]


def test_data_only_the_stack_writes_is_not_shared() -> None:
    wanted = [
        Mount("volume", "shop_db-data"),
        Mount("path", "/srv/shop/pgdata"),
        Mount("path", "/var/run/docker.sock"),
        Mount("volume", "backups", writable=False),
    ]
    compose = [
        used("volume", "other_db-data"),
        used("path", "/srv/shop/pgdata-old"),
        used("path", "/srv/other"),
        used("path", "/srv/shop/pgdata", writable=False),
        used("path", "/var/run/docker.sock"),
        used("volume", "backups"),
    ]
    assert shared_data(wanted, compose, {"other_db-data": "other"}) == []
