"""Sending email. The reference service has no SMTP: its mailer logs each message.

A real provider is called with the message's idempotency key (``outbox-<id>``), so a
delivery retried after a crash between "sent" and "marked sent" is one email, not two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    """One email."""

    key: str
    to: str
    subject: str


class Mailer(Protocol):
    """Delivers a message (raising on failure, so the job retries)."""

    async def send(self, message: Message) -> None:
        """Deliver ``message``; the provider deduplicates by ``message.key``."""
        ...


class LogMailer:
    """The reference service's mailer: a log line per delivered message."""

    async def send(self, message: Message) -> None:
        """Log the delivery."""
        log.info("delivered %s to %s: %s", message.key, message.to, message.subject)
