"""The SAQ queue shared by the API (to enqueue) and the worker (to process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saq import Queue

if TYPE_CHECKING:
    from app.settings import Settings

WELCOME_EMAIL_TASK = "send_welcome_email"


def make_queue(settings: Settings) -> Queue:
    """A queue on the configured Redis; connect it before use."""
    return Queue.from_url(settings.redis_url, name=settings.queue_name)
