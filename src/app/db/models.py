"""The service's tables."""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.base import IdentityBase
from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

metadata = IdentityBase.metadata


def utcnow() -> datetime:
    """Timezone-aware now, for Python-side defaults."""
    return datetime.now(UTC)


class User(IdentityBase):
    """A person who signed up."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    outbox: Mapped[list[EmailOutbox]] = relationship(
        back_populates="user", lazy="selectin", order_by="EmailOutbox.id"
    )


class EmailOutbox(IdentityBase):
    """An email the service owes somebody; the worker marks it sent."""

    __tablename__ = "email_outbox"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship(back_populates="outbox")
