"""Wait until the database answers (the prestart script's first step)."""

from __future__ import annotations

import logging
import time

from sqlalchemy import text

from app.db import engine

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)


def main(tries: int = 60, wait: float = 1.0) -> None:
    for attempt in range(tries):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            logger.info("database not ready (%s/%s): %s", attempt + 1, tries, exc)
            time.sleep(wait)
        else:
            logger.info("database ready")
            return
    raise SystemExit("the database never answered")


if __name__ == "__main__":
    main()
