"""The SAQ queue shared by the API (to enqueue) and the worker (to process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from saq import Queue

if TYPE_CHECKING:
    from app.settings import Settings

SEND_EMAIL_TASK = "send_email"
#: a failed send is retried with exponential backoff (1 s, 2 s, 4 s … at most 60 s)
SEND_RETRIES = 8
SEND_RETRY_DELAY = 1.0
SEND_MAX_DELAY = 60.0


def make_queue(settings: Settings) -> Queue:
    """A queue on the configured Redis; connect it before use."""
    return Queue.from_url(settings.redis_url, name=settings.queue_name)


def send_job(outbox_id: int) -> dict[str, Any]:
    """Arguments of ``queue.enqueue`` for sending one outbox row: one job per row at a time
    (its key), retried with backoff."""
    return {
        "key": f"outbox-{outbox_id}",
        "outbox_id": outbox_id,
        "retries": SEND_RETRIES,
        "retry_delay": SEND_RETRY_DELAY,
        "retry_backoff": SEND_MAX_DELAY,
    }
