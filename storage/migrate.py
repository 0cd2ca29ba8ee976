"""Apply Alembic migrations from code: on ``serve`` start-up and ``order-menu db upgrade``."""

from __future__ import annotations

import asyncio
import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATION_LOCK_ID = 0x6F6D6D67  # "ommg": one process migrates at a time on PostgreSQL


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision. Found by reading every migration script
    (~7 ms), so once per process: /readyz asks at every probe, and the scripts do
    not change under a running process."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, to: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to the newest revision (or ``to``); return (before, after).

    Several processes may start at once against one PostgreSQL database: an
    advisory lock held for the transaction makes the others wait, then find
    nothing to do. On a new SQLite file, a process switching it to WAL while another
    migrates can be refused at once ("database is locked": SQLite refuses rather
    than deadlock, without waiting out the busy timeout); it tries again.
    """
    for attempt in range(5):
        try:
            return await _upgrade_once(engine, to)
        except OperationalError as exc:
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 4:
                raise
            await asyncio.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


async def _upgrade_once(engine: AsyncEngine, to: str) -> tuple[str | None, str | None]:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade, to)
        after = await conn.run_sync(_current)
    return before, after


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, to: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, to)
