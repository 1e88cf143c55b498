"""The async engine and sessions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shop.settings import settings


def make_engine(url: str | None = None, **kwargs: object) -> AsyncEngine:
    return create_async_engine(url or settings.database_url, echo=settings.database_echo, **kwargs)


def sessions(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)
