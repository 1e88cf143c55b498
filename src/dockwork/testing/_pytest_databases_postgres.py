"""pytest-databases' PostgreSQL fixture names on this process's own database (see
:mod:`dockwork.testing.pytest_databases`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dockwork.testing.pytest_databases import service

if TYPE_CHECKING:
    from dockwork.kinds.templates import Database


@pytest.fixture(scope="session")
def postgres_service(dockwork_database: Database) -> Any:
    """pytest-databases' PostgresService, on this process's own database."""
    from pytest_databases.docker.postgres import PostgresService  # noqa: PLC0415

    db = dockwork_database
    return service(
        PostgresService,
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        database=db.database,
    )


@pytest.fixture(scope="session")
def postgres_host(dockwork_database: Database) -> str:
    """The test PostgreSQL's host."""
    return dockwork_database.host


@pytest.fixture(scope="session")
def postgres_port(dockwork_database: Database) -> int:
    """The test PostgreSQL's port."""
    return dockwork_database.port


@pytest.fixture(scope="session")
def postgres_user(dockwork_database: Database) -> str:
    """The test PostgreSQL's user."""
    return dockwork_database.user


@pytest.fixture(scope="session")
def postgres_password(dockwork_database: Database) -> str:
    """The test PostgreSQL's password."""
    return dockwork_database.password
