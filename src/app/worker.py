"""The SAQ worker: ``saq app.worker.settings``.

Emails leave through a transactional outbox. The API commits the user and an outbox row
together and only then enqueues a send job, which may fail (Redis down): the row stays
``pending``, and a periodic job re-enqueues rows left pending, so every committed email is
sent. A send claims its row first (``pending`` → ``sending``, in one UPDATE), so a job that
is retried or enqueued twice never sends the same email twice; a claim older than the
lease (a worker killed mid-send) is retried with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from saq import CronJob
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from app.db.models import PENDING, SENDING, SENT, EmailOutbox, User, utcnow
from app.mail import LogMailer, Mailer, Message
from app.queue import SEND_EMAIL_TASK, make_queue, send_job
from app.settings import Settings

if TYPE_CHECKING:
    from saq.queue.redis import RedisQueue
    from saq.types import Context

log = logging.getLogger(__name__)

#: a claim older than this belongs to a job that died mid-send: it is retried
CLAIM_LEASE = timedelta(seconds=60)
SWEEP_BATCH = 500
#: how often the worker proves it is alive (WORKER_HEARTBEAT_FILE)
HEARTBEAT_SECONDS = 0.5


def _sessions(ctx: Context) -> async_sessionmaker[Any]:
    return ctx["sessions"]  # type: ignore[typeddict-item, no-any-return]


async def send_email(ctx: Context, *, outbox_id: int) -> dict[str, Any]:
    """Claim the outbox row, deliver it, mark it sent; a no-op when another has it."""
    now = utcnow()
    async with _sessions(ctx).begin() as session:
        claimed = (
            await session.execute(
                update(EmailOutbox)
                .where(
                    EmailOutbox.id == outbox_id,
                    or_(
                        EmailOutbox.status == PENDING,
                        (EmailOutbox.status == SENDING)
                        & (EmailOutbox.claimed_at < now - CLAIM_LEASE),
                    ),
                )
                .values(status=SENDING, claimed_at=now, attempts=EmailOutbox.attempts + 1)
                .returning(EmailOutbox.subject, EmailOutbox.user_id)
            )
        ).one_or_none()
        if claimed is None:
            return {"outbox_id": outbox_id, "sent": False}
        to = await session.scalar(select(User.email).where(User.id == claimed.user_id))
    mailer: Mailer = ctx.get("mailer") or LogMailer()  # type: ignore[assignment]
    try:
        await mailer.send(Message(f"outbox-{outbox_id}", str(to), claimed.subject))
    except Exception:
        # give the row back at once, so the retry (with backoff) can claim it
        async with _sessions(ctx).begin() as session:
            await session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.id == outbox_id, EmailOutbox.status == SENDING)
                .values(status=PENDING, claimed_at=None)
            )
        raise
    async with _sessions(ctx).begin() as session:
        await session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == outbox_id, EmailOutbox.status == SENDING)
            .values(status=SENT, sent_at=utcnow())
        )
    return {"outbox_id": outbox_id, "sent": True}


def sweep_cron(seconds: int) -> str:
    """A croniter schedule (seconds last) that runs every ``seconds`` of each minute."""
    return f"* * * * * */{seconds}"


async def requeue_outbox(ctx: Context) -> dict[str, Any]:
    """Enqueue a send for rows left pending (enqueue failed) or claimed by a dead job. A
    pending row is the API's to enqueue for one sweep interval before the sweep takes it."""
    now = utcnow()
    app_settings: Settings = ctx["settings"]  # type: ignore[typeddict-item]
    grace = timedelta(seconds=app_settings.outbox_sweep_seconds)
    async with _sessions(ctx).begin() as session:
        ids = (
            await session.scalars(
                select(EmailOutbox.id)
                .where(
                    or_(
                        (EmailOutbox.status == PENDING) & (EmailOutbox.created_at < now - grace),
                        (EmailOutbox.status == SENDING)
                        & (EmailOutbox.claimed_at < now - CLAIM_LEASE),
                    )
                )
                .order_by(EmailOutbox.id)
                .limit(SWEEP_BATCH)
            )
        ).all()
    queue = ctx["worker"].queue
    enqueued = 0
    for outbox_id in ids:
        # the job's key makes this a no-op while a send of the row is queued or running
        if await queue.enqueue(SEND_EMAIL_TASK, **send_job(outbox_id)) is not None:
            enqueued += 1
    if enqueued:
        log.info("re-enqueued %d outbox row(s)", enqueued)
    return {"found": len(ids), "enqueued": enqueued}


async def heartbeat(ctx: Context, path: Path, every: float = HEARTBEAT_SECONDS) -> None:
    """Touch ``path`` every few seconds while Redis answers: a healthcheck as cheap as a
    file's age (`find -mmin`), instead of starting a Python interpreter each time."""
    queue = cast("RedisQueue", ctx["worker"].queue)
    while True:
        try:
            await queue.redis.ping()
        except Exception as exc:  # noqa: BLE001 - no Redis, no heartbeat: the check fails
            log.warning("heartbeat: Redis does not answer: %s", exc)
        else:
            await asyncio.to_thread(path.touch)
        await asyncio.sleep(every)


async def startup(ctx: Context) -> None:
    """Open the database engine once per worker process; start the heartbeat if asked."""
    engine = create_async_engine(ctx["settings"].database_url, pool_pre_ping=True)  # type: ignore[typeddict-item]
    ctx["engine"] = engine  # type: ignore[typeddict-unknown-key]
    ctx["sessions"] = async_sessionmaker(engine, expire_on_commit=False)  # type: ignore[typeddict-unknown-key]
    beat_file = os.environ.get("WORKER_HEARTBEAT_FILE")
    if beat_file:
        task = asyncio.create_task(heartbeat(ctx, Path(beat_file)))
        ctx["heartbeat"] = task  # type: ignore[typeddict-unknown-key]


async def shutdown(ctx: Context) -> None:
    """Stop the heartbeat, close the database engine."""
    task: asyncio.Task[None] | None = ctx.get("heartbeat")  # type: ignore[assignment]
    if task is not None:
        task.cancel()
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
        "functions": [(SEND_EMAIL_TASK, send_email)],
        "cron_jobs": [
            CronJob(requeue_outbox, cron=sweep_cron(app_settings.outbox_sweep_seconds), timeout=30)
        ],
        "concurrency": 10,
        "startup": _startup,
        "shutdown": shutdown,
    }
