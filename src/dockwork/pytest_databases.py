"""pytest-databases' fixture names, served by dockwork's servers (``pytest_databases = true``).

A suite written on pytest-databases loads its fixtures with ``pytest_plugins =
["pytest_databases.docker.postgres", …]``. With ``pytest_databases = true`` in
``[tool.dockwork]``, right after each of those modules is registered, dockwork registers
fixtures of the same names behind it (a plugin registered later wins), so the tests get
this process's own database and Redis database on dockwork's servers, and no
pytest-databases container starts. Covered:

- ``postgres_service`` (a ``PostgresService``: host, port, user, password, database — this
  xdist worker's own, migrated), ``postgres_host``, ``postgres_port``, ``postgres_user``,
  ``postgres_password``; ``postgres_connection`` (pytest-databases' own) then connects to it;
- ``redis_service`` (a ``RedisService``: host, port, db — this worker's own logical
  database), ``redis_host``, ``redis_port``. pytest-databases' Redis has no password, so
  with this setting dockwork's test Redis has none either (it still listens on loopback,
  on a random port).

Not covered: the per-version fixtures (``postgres_16_service``, ``pgvector_service``, …),
other engines (MySQL, …), and fixtures a conftest defines itself (a conftest always wins
over plugins); those keep starting pytest-databases' containers.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dockwork.testservers.env import Database, RedisDatabase

#: pytest-databases' modules dockwork stands in for, and the fixtures standing in
MODULES = {
    "pytest_databases.docker.postgres": "postgres",
    "pytest_databases.docker.redis": "redis",
}


def _service(cls: type[Any], **fields: Any) -> Any:
    """One of pytest-databases' service dataclasses; ``container`` (0.18+) is None: no
    container of pytest-databases' runs."""
    names = {f.name for f in dataclasses.fields(cls)}
    if "container" in names:
        fields["container"] = None
    return cls(**{k: v for k, v in fields.items() if k in names})


class PostgresFixtures:
    """``postgres_service`` and its parts: this process's own database."""

    @pytest.fixture(scope="session")
    def postgres_service(self, dockwork_database: Database) -> Any:
        """pytest-databases' PostgresService, on this process's own database."""
        from pytest_databases.docker.postgres import PostgresService  # noqa: PLC0415

        db = dockwork_database
        return _service(
            PostgresService,
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password,
            database=db.database,
        )

    @pytest.fixture(scope="session")
    def postgres_host(self, dockwork_database: Database) -> str:
        """The test PostgreSQL's host."""
        return dockwork_database.host

    @pytest.fixture(scope="session")
    def postgres_port(self, dockwork_database: Database) -> int:
        """The test PostgreSQL's port."""
        return dockwork_database.port

    @pytest.fixture(scope="session")
    def postgres_user(self, dockwork_database: Database) -> str:
        """The test PostgreSQL's user."""
        return dockwork_database.user

    @pytest.fixture(scope="session")
    def postgres_password(self, dockwork_database: Database) -> str:
        """The test PostgreSQL's password."""
        return dockwork_database.password


class RedisFixtures:
    """``redis_service`` and its parts: this process's own logical database."""

    @pytest.fixture(scope="session")
    def redis_service(self, dockwork_redis: RedisDatabase) -> Any:
        """pytest-databases' RedisService, on this process's own logical database."""
        from pytest_databases.docker.redis import RedisService  # noqa: PLC0415

        r = dockwork_redis
        return _service(RedisService, host=r.host, port=r.port, db=r.db)

    @pytest.fixture(scope="session")
    def redis_host(self, dockwork_redis: RedisDatabase) -> str:
        """The test Redis's host."""
        return dockwork_redis.host

    @pytest.fixture(scope="session")
    def redis_port(self, dockwork_redis: RedisDatabase) -> int:
        """The test Redis's port."""
        return dockwork_redis.port


FIXTURES = {"postgres": PostgresFixtures, "redis": RedisFixtures}


def stand_in(module: str, manager: pytest.PytestPluginManager) -> None:
    """Register dockwork's fixtures behind pytest-databases' ``module`` (once)."""
    kind = MODULES.get(module)
    name = f"dockwork-pytest-databases-{kind}"
    if kind is None or manager.has_plugin(name):
        return
    manager.register(FIXTURES[kind](), name=name)


__all__ = ["MODULES", "PostgresFixtures", "RedisFixtures", "stand_in"]
