"""GET /health against real services: 200 when both answer, 503 naming the one that does not."""

from __future__ import annotations

import os
from typing import Any

import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from dockwork.services.docker import DockerBackend, docker_available


def test_health_ok(client: TestClient[Any]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.docker
def test_health_503_names_redis_when_redis_is_stopped(dockwork_database_url: str) -> None:
    if (reason := docker_available()) is not None:
        pytest.skip(f"needs a Docker engine to stop a Redis container: {reason}")
    # A Redis of this test's own, so stopping it disturbs nobody else.
    backend = DockerBackend("dockwork-health-test", environ=os.environ)
    try:
        services = backend.start()
        settings = Settings.from_env(
            {"DATABASE_URL": dockwork_database_url, "REDIS_URL": services.redis_url}
        )
        with TestClient(app=create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            backend.client.containers.get(services.details["redis"]).stop(timeout=1)
            response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["database"] == "ok"
    finally:
        backend.stop()
