"""Alembic's command line, pointed at the migrations shipped in this package.

``python -m app.db upgrade head`` works from the checkout, the dev image and the production
image alike, with ``DATABASE_URL`` naming the database.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic.config import CommandLine

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def main(argv: list[str] | None = None) -> None:
    """Run an alembic command against this package's migrations."""
    args = sys.argv[1:] if argv is None else argv
    CommandLine(prog="python -m app.db").main(["-c", str(ALEMBIC_INI), *args])


if __name__ == "__main__":
    main()
