"""Plain Alembic: the URL from SHOP_DATABASE_URL, the models' metadata."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from models import Base

url = os.environ["SHOP_DATABASE_URL"]
if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
