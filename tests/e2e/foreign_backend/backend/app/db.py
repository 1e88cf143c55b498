"""The engine, created at import from the settings; the initial data."""

from __future__ import annotations

from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import settings
from app.models import Item

engine = create_engine(settings.SQLALCHEMY_DATABASE_URI, pool_pre_ping=True)

FIRST_ITEM = "welcome"


def init_db(session: Session) -> None:
    """The rows every database starts with (tables come from the migrations)."""
    if session.scalar(select(Item).where(Item.title == FIRST_ITEM)) is None:
        session.add(Item(title=FIRST_ITEM, description="created by init_db"))
        try:
            session.commit()
        except IntegrityError:  # created meanwhile by another process
            session.rollback()
