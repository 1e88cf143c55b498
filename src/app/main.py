"""The Litestar application factory: ``uvicorn --factory app.main:create_app``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from litestar.exceptions import ValidationException
from redis.exceptions import RedisError

from app.api import UserController, health, readable_validation_errors
from app.queue import make_queue
from app.settings import Settings
from app.web import frontend, to_the_docs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


class QuietHealthChecks(logging.Filter):
    """Drops access-log lines of successful ``GET /health`` (the healthcheck's, every few
    seconds); failed health checks and every other request are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a 2xx ``/health`` line of uvicorn's access log."""
        args = record.args
        if not isinstance(args, tuple) or len(args) < 5:  # noqa: PLR2004 - uvicorn's format
            return True
        path, status = str(args[2]), args[4]
        is_health = path == "/health" or path.startswith("/health?")
        return not (is_health and isinstance(status, int) and 200 <= status < 300)  # noqa: PLR2004


def quiet_health_checks() -> None:
    """Install :class:`QuietHealthChecks` on uvicorn's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietHealthChecks) for f in access.filters):
        access.addFilter(QuietHealthChecks())


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app; settings come from the environment unless given."""
    settings = settings or Settings.from_env()
    quiet_health_checks()
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
        app.state.debug = settings.debug
        try:
            yield
        finally:
            # Shutting down must work while Redis is unreachable: that is when it matters.
            try:
                await queue.disconnect()
            except (RedisError, OSError) as exc:
                log.warning("closing the Redis queue failed during shutdown: %s", exc)

    # the built frontend when there is one (production image); else `/` leads to the docs
    web = (frontend(Path(settings.web_dir)) if settings.web_dir else []) or [to_the_docs]
    return Litestar(
        route_handlers=[UserController, health, *web],
        exception_handlers={ValidationException: readable_validation_errors},
        plugins=[SQLAlchemyPlugin(config=db_config)],
        lifespan=[queue_lifespan],
        debug=settings.debug,
    )
