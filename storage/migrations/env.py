"""Alembic environment: runs on the connection handed in by ``storage.migrate``.

For developers generating a new revision from the command line
(``alembic -c storage/alembic.ini revision --autogenerate -m "..."``) it connects to
``DATABASE_URL`` itself.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from sqlalchemy import Connection

from storage.models import Base
from storage.types import UTCDateTime

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as plain SQLAlchemy ones, so revisions never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, sa.JSON):
        return "JSON"  # each revision defines JSON = sa.JSON().with_variant(JSONB, "postgresql")
    return False


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        render_as_batch=True,  # SQLite alters tables by copy; batch mode does that for us
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    from storage.engine import create_engine

    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./order-menu.db"))
    async with engine.begin() as conn:
        await conn.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_standalone())
