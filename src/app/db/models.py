"""The service's tables."""

from __future__ import annotations

from datetime import UTC, datetime

from advanced_alchemy.base import IdentityBase
from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

metadata = IdentityBase.metadata

#: outbox states: pending → sending (claimed by one job) → sent
PENDING, SENDING, SENT = "pending", "sending", "sent"


def utcnow() -> datetime:
    """Timezone-aware now, for Python-side defaults."""
    return datetime.now(UTC)


class User(IdentityBase):
    """A person who signed up."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    outbox: Mapped[list[EmailOutbox]] = relationship(
        back_populates="user", lazy="selectin", order_by="EmailOutbox.id"
    )


# unique case-insensitively: Ada@x.test and ada@x.test are one address
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class EmailOutbox(IdentityBase):
    """An email the service owes somebody; a worker job claims it, sends it, marks it sent."""

    __tablename__ = "email_outbox"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=PENDING, server_default=PENDING)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    #: when a job last claimed it (status "sending"); a stale claim is retried
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship(back_populates="outbox")
