"""The Litestar application factory: ``uvicorn --factory app.main:create_app``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from redis.exceptions import RedisError

from app.api import UserController, health
from app.queue import make_queue
from app.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app; settings come from the environment unless given."""
    settings = settings or Settings.from_env()
    db_config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        create_all=False,
    )

    @asynccontextmanager
    async def queue_lifespan(app: Litestar) -> AsyncIterator[None]:
        queue = make_queue(settings)
        await queue.connect()
        app.state.queue = queue
        try:
            yield
        finally:
            # Shutting down must work while Redis is unreachable: that is when it matters.
            try:
                await queue.disconnect()
            except (RedisError, OSError) as exc:
                log.warning("closing the Redis queue failed during shutdown: %s", exc)

    return Litestar(
        route_handlers=[UserController, health],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        lifespan=[queue_lifespan],
        debug=settings.debug,
    )
