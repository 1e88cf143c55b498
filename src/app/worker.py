"""The SAQ worker: ``saq app.worker.settings``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from app.db.models import EmailOutbox, utcnow
from app.queue import WELCOME_EMAIL_TASK, make_queue
from app.settings import Settings

if TYPE_CHECKING:
    from saq.types import Context

log = logging.getLogger(__name__)


async def send_welcome_email(ctx: Context, *, user_id: int) -> dict[str, Any]:
    """Deliver the user's pending emails (no real SMTP) and mark them sent."""
    sessions: async_sessionmaker[Any] = ctx["sessions"]  # type: ignore[typeddict-item]
    async with sessions.begin() as session:
        pending = (
            await session.scalars(
                select(EmailOutbox.id)
                .where(EmailOutbox.user_id == user_id, EmailOutbox.status == "pending")
                .with_for_update(skip_locked=True)
            )
        ).all()
        if pending:
            await session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.id.in_(pending))
                .values(status="sent", sent_at=utcnow())
            )
    log.info("user %s: %d welcome email(s) sent", user_id, len(pending))
    return {"user_id": user_id, "sent": len(pending)}


async def startup(ctx: Context) -> None:
    """Open the database engine once per worker process."""
    engine = create_async_engine(ctx["settings"].database_url, pool_pre_ping=True)  # type: ignore[typeddict-item]
    ctx["engine"] = engine  # type: ignore[typeddict-unknown-key]
    ctx["sessions"] = async_sessionmaker(engine, expire_on_commit=False)  # type: ignore[typeddict-unknown-key]


async def shutdown(ctx: Context) -> None:
    """Close the database engine."""
    engine: AsyncEngine | None = ctx.get("engine")  # type: ignore[assignment]
    if engine is not None:
        await engine.dispose()


def settings() -> dict[str, Any]:
    """SAQ worker settings, built when the worker starts (SAQ calls this)."""
    app_settings = Settings.from_env()

    async def _startup(ctx: Context) -> None:
        ctx["settings"] = app_settings  # type: ignore[typeddict-unknown-key]
        await startup(ctx)

    return {
        "queue": make_queue(app_settings),
        "functions": [(WELCOME_EMAIL_TASK, send_welcome_email)],
        "concurrency": 10,
        "startup": _startup,
        "shutdown": shutdown,
    }
