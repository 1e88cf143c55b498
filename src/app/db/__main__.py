"""Alembic's command line, pointed at the migrations shipped in this package.

``python -m app.db upgrade head`` works from the checkout, the dev image and the production
image alike, with ``DATABASE_URL`` naming the database. With ``DATABASE_WAIT`` (seconds) it
first waits until the database answers, so Compose can start it together with the database
instead of after the database's healthcheck. ``upgrade head`` on a database already at head
returns at once (asyncpg and the revision files, without importing the models).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
MIGRATIONS = Path(__file__).with_name("migrations")


def _libpq(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


async def _revisions(wait: float) -> set[str] | None:
    """The database's applied revisions (None: no alembic_version table yet), waiting up
    to ``wait`` seconds for it to answer."""
    import asyncpg  # noqa: PLC0415

    from app.settings import Settings  # noqa: PLC0415

    url = _libpq(Settings.from_env().database_url)
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() >= deadline:
                sys.exit(f"the database did not answer within {wait:g}s: {exc}")
            await asyncio.sleep(0.1)
            continue
        try:
            rows = await conn.fetch("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            return None
        finally:
            await conn.close()
        return {str(r["version_num"]) for r in rows}


def at_head(wait: float) -> bool:
    """True when the database already holds every head revision: nothing to upgrade."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - the revisions, not the models

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    return asyncio.run(_revisions(wait)) == heads


def main(argv: list[str] | None = None) -> None:
    """Run an alembic command against this package's migrations."""
    args = sys.argv[1:] if argv is None else argv
    wait = float(os.environ.get("DATABASE_WAIT") or 0)
    if args == ["upgrade", "head"]:
        if at_head(wait):
            print("The database is at head already; nothing to upgrade.")  # noqa: T201
            return
    elif wait > 0:
        asyncio.run(_revisions(wait))
    from alembic.config import CommandLine  # noqa: PLC0415

    CommandLine(prog="python -m app.db").main(["-c", str(ALEMBIC_INI), *args])


if __name__ == "__main__":
    main()
