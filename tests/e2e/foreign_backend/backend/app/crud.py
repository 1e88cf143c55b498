"""Reading and writing items."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Item


class DuplicateError(Exception):
    """An item with that title exists."""


def create_item(session: Session, title: str, description: str | None = None) -> Item:
    item = Item(title=title, description=description)
    session.add(item)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise DuplicateError(title) from exc
    session.refresh(item)
    return item


def get_item(session: Session, item_id: int) -> Item | None:
    return session.get(Item, item_id)


def list_items(session: Session, skip: int = 0, limit: int = 100) -> tuple[list[Item], int]:
    count = session.scalar(select(func.count()).select_from(Item)) or 0
    items = session.scalars(select(Item).order_by(Item.id).offset(skip).limit(limit)).all()
    return list(items), count


def update_item(session: Session, item: Item, **changes: str | None) -> Item:
    for key, value in changes.items():
        setattr(item, key, value)
    session.commit()
    session.refresh(item)
    return item


def delete_item(session: Session, item: Item) -> None:
    session.delete(item)
    session.commit()
