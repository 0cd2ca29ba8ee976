"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from storage import migrate
from storage.engine import create_engine
from storage.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_matches_the_models(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        before, after = await migrate.upgrade(engine)
        assert before is None and after == migrate.head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
        # a second upgrade is a no-op
        assert await migrate.upgrade(engine) == (after, after)
    finally:
        await engine.dispose()


async def test_processes_starting_together_migrate_once(empty_db_url: str) -> None:
    engines = [create_engine(empty_db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate.upgrade(e) for e in engines))
        head = migrate.head_revision()
        assert sorted(r[0] or "" for r in results) == ["", head, head]
        async with engines[0].connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [v[0] for v in versions] == [head]
    finally:
        for engine in engines:
            await engine.dispose()
