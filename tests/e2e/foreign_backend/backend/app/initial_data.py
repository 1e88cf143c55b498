"""Create the initial data (the prestart script's last step)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import engine, init_db


def main() -> None:
    with Session(engine) as session:
        init_db(session)


if __name__ == "__main__":
    main()
