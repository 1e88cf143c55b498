"""GET /health against real services: 200 when both answer, 503 naming the one that does not."""

from __future__ import annotations

from typing import Any

import docker
import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from tests.helpers import docker_backend, needs_docker


def test_health_ok(client: TestClient[Any]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.docker
def test_health_503_names_redis_when_redis_is_stopped(dockwork_database_url: str) -> None:
    needs_docker("a Docker engine to stop a Redis container")
    # A Redis of this test's own, so stopping it disturbs nobody else.
    backend = docker_backend("dockwork-health-test", kinds=("redis",))
    try:
        servers = backend.start()
        assert servers.redis_url is not None
        settings = Settings.from_env(
            {"DATABASE_URL": dockwork_database_url, "REDIS_URL": servers.redis_url}
        )
        with TestClient(app=create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            docker.from_env().containers.get(servers.details["redis"]).stop(timeout=1)
            response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"] == "unavailable", "no exception text outside debug"
    finally:
        backend.stop()
