"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from catalog.loader import load_catalog
from storage import migrate
from storage.engine import create_engine
from storage.models import Base
from tests.conftest import QINGSHIWAN


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


async def test_stored_catalog_versions_are_recomputed_when_their_formula_changes(
    empty_db_url: str,
) -> None:
    """0011: a catalog stored under the old version (its lexicon hashed in file order)
    gets the version the code now computes for it. Otherwise every process would find
    the stored version differs from its catalog's and reload it every few seconds."""
    catalog = load_catalog(QINGSHIWAN)
    engine = create_engine(empty_db_url)
    try:
        await migrate.upgrade(engine, to="0010")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO communities (id, name, timezone, created_at) "
                    "VALUES (:id, :name, 'Asia/Shanghai', CURRENT_TIMESTAMP)"
                ),
                {"id": catalog.community_id, "name": catalog.community_name},
            )
            await conn.execute(
                text(
                    "INSERT INTO catalog_versions "
                    "(community_id, version, document, source, imported_at, summary) "
                    "VALUES (:community, 'hashed-the-old', :document, 'x', CURRENT_TIMESTAMP, '{}')"
                ),
                {"community": catalog.community_id, "document": catalog.to_json()},
            )
        assert await migrate.upgrade(engine) == ("0010", migrate.head_revision())
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT version FROM catalog_versions"))).scalars()
            assert list(stored) == [catalog.version]
    finally:
        await engine.dispose()
