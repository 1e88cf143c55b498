"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=320)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/users body."""

    email: Email
    name: Name


class OutboxItem(msgspec.Struct):
    """One email owed to the user."""

    id: int
    subject: str
    status: str
    sent_at: datetime | None


class UserRead(msgspec.Struct):
    """A user with the status of their emails."""

    id: int
    email: str
    name: str
    created_at: datetime
    outbox: list[OutboxItem]
