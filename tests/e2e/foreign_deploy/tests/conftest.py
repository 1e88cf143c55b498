"""Test fixtures on pytest-databases: a PostgreSQL service, an async engine on it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from pytest_databases.docker.postgres import PostgresService
from sqlalchemy import pool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shop.db import make_engine
from shop.models import Base

pytest_plugins = ["pytest_databases.docker.postgres"]

T = TypeVar("T")
#: a file to append "worker database host:port" to (unset: nothing is written)
DATABASE_LOG = os.environ.get("SHOP_TEST_DATABASE_LOG")


@pytest.fixture(scope="session")
def postgres_image() -> str:
    """The image pytest-databases runs: the one our compose files use."""
    return os.environ.get("POSTGRES_IMAGE", "postgres:17")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def engine(postgres_service: PostgresService) -> Iterator[AsyncEngine]:
    url = URL.create(
        "postgresql+asyncpg",
        username=postgres_service.user,
        password=postgres_service.password,
        host=postgres_service.host,
        port=postgres_service.port,
        database=postgres_service.database,
    )
    engine = make_engine(url.render_as_string(hide_password=False), poolclass=pool.NullPool)

    async def prepare() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            if DATABASE_LOG:
                name = await conn.scalar(text("SELECT current_database()"))
                worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
                where = f"{postgres_service.host}:{postgres_service.port}"
                with open(DATABASE_LOG, "a") as log:
                    log.write(f"{worker} {name} {where}\n")

    run(prepare())
    yield engine
    run(engine.dispose())


@pytest.fixture
def session(engine: AsyncEngine) -> Iterator[AsyncSession]:
    """A session for one test (closed on the test's own loop)."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    yield maker()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
