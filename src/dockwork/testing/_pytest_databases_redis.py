"""pytest-databases' Redis fixture names on this process's own logical database (see
:mod:`dockwork.testing.pytest_databases`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dockwork.testing.pytest_databases import service

if TYPE_CHECKING:
    from dockwork.kinds.templates import RedisDatabase


@pytest.fixture(scope="session")
def redis_service(dockwork_redis: RedisDatabase) -> Any:
    """pytest-databases' RedisService, on this process's own logical database."""
    from pytest_databases.docker.redis import RedisService  # noqa: PLC0415

    r = dockwork_redis
    return service(RedisService, host=r.host, port=r.port, db=r.db)


@pytest.fixture(scope="session")
def redis_host(dockwork_redis: RedisDatabase) -> str:
    """The test Redis's host."""
    return dockwork_redis.host


@pytest.fixture(scope="session")
def redis_port(dockwork_redis: RedisDatabase) -> int:
    """The test Redis's port."""
    return dockwork_redis.port
