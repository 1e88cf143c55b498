"""The shop against a real PostgreSQL that dockwork's pytest plugin provides."""

from __future__ import annotations

import os

from shop import create_app


def test_items_round_trip(dockwork_database_url: str, dockwork_servers: object) -> None:
    assert dockwork_database_url.startswith("postgresql+psycopg://"), "the project's own scheme"
    # a project without Redis gets no Redis, unless it asks (EXPECT_REDIS: the test says so)
    expect_redis = os.environ.get("EXPECT_REDIS") == "1"
    assert (dockwork_servers.redis_url is not None) is expect_redis  # type: ignore[attr-defined]
    client = create_app(dockwork_database_url).test_client()
    assert client.post("/items", json={"name": "tea"}).status_code == 201
    assert client.get("/items").json == ["tea"]
