from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app import crud
from app.core.config import settings


def test_create_item(db: Session, title: str) -> None:
    item = crud.create_item(db, title, "desc")
    assert item.id is not None
    assert item.title == title


def test_create_item_twice(db: Session, title: str) -> None:
    crud.create_item(db, title)
    with pytest.raises(crud.DuplicateError):
        crud.create_item(db, title)


def test_get_item(db: Session, title: str) -> None:
    item = crud.create_item(db, title)
    stored = crud.get_item(db, item.id)
    assert stored is not None
    assert stored.title == title


@pytest.mark.parametrize("n", range(5))
def test_list_items_pages(db: Session, title: str, n: int) -> None:
    for i in range(n + 1):
        crud.create_item(db, f"{title}-{i}")
    page, count = crud.list_items(db, skip=0, limit=2)
    assert len(page) == 2
    assert count >= n + 2


def test_update_item(db: Session, title: str) -> None:
    item = crud.create_item(db, title, "old")
    crud.update_item(db, item, description="new")
    assert crud.get_item(db, item.id).description == "new"  # type: ignore[union-attr]


def test_delete_item(db: Session, title: str) -> None:
    item = crud.create_item(db, title)
    crud.delete_item(db, item)
    assert crud.get_item(db, item.id) is None


def test_settings_name_a_database() -> None:
    assert settings.POSTGRES_DB
    assert settings.SQLALCHEMY_DATABASE_URI.drivername == "postgresql+psycopg"
