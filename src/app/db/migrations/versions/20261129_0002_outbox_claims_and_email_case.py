"""outbox claims and case-insensitive emails

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 14:00:00.000000+00:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # emails are unique whatever their case (fails, rolling back, if existing rows clash)
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.drop_constraint(op.f("uq_users_email"), "users", type_="unique")
    # the outbox remembers when a row was written and when a job claimed it
    op.add_column(
        "email_outbox",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(
        "email_outbox", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "email_outbox", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_column("email_outbox", "attempts")
    op.drop_column("email_outbox", "claimed_at")
    op.drop_column("email_outbox", "created_at")
    op.create_unique_constraint(op.f("uq_users_email"), "users", ["email"])
    op.drop_index("uq_users_email_lower", table_name="users")
