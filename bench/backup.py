#!/usr/bin/env python3
"""Backup and restore times: N orders (one resident each) in the demo catalog's
community, then ``db backup`` and ``db restore`` into a fresh database.

    .venv/bin/python bench/backup.py [--orders 10000] [--postgres URL]

SQLite in a temporary directory by default; with ``--postgres`` (the URL of a server
database the user may create databases from, e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/test) two databases are created there
and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from catalog.loader import demo_catalog_path, load_catalog
from storage import migrate, models
from storage.backup import backup, restore
from storage.engine import create_engine, create_sessionmaker
from storage.order_status import OrderStatus
from storage.repositories.catalog import import_catalog


async def seed(url: str, orders: int) -> None:
    engine = create_engine(url, pool_size=2)
    try:
        await migrate.upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        catalog = load_catalog(demo_catalog_path())
        async with sessionmaker.begin() as session:
            await import_catalog(session, catalog, source="demo", source_sha256="bench")
        community = catalog.community_id
        async with sessionmaker.begin() as session:
            item = await session.scalar(select(models.Item).where(models.Item.key == "home-repair"))
            assert item is not None
            for first in range(0, orders, 1000):
                residents = [
                    models.Resident(community_id=community, openid=f"o_{n}", tags=[])
                    for n in range(first, min(first + 1000, orders))
                ]
                session.add_all(residents)
                await session.flush()
                session.add_all(
                    models.Order(
                        community_id=community,
                        code=f"B{first + i:05d}",
                        item_id=item.id,
                        unit_id=item.unit_id,
                        resident_id=resident.id,
                        status=OrderStatus.SUBMITTED.value,
                        answers={"phone": "13800000000", "building": "1栋"},
                    )
                    for i, resident in enumerate(residents)
                )
                await session.flush()
    finally:
        await engine.dispose()


async def admin(server: str, statement: str) -> None:
    engine = create_engine(server, pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def main(orders: int, server: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"om_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        if server:
            for name in names:
                await admin(server, f'CREATE DATABASE "{name}"')
            source, target = (
                make_url(server).set(database=name).render_as_string(hide_password=False)
                for name in names
            )
        else:
            source = f"sqlite+aiosqlite:///{tmp}/source.db"
            target = f"sqlite+aiosqlite:///{tmp}/restored.db"
        try:
            await seed(source, orders)
            started = time.perf_counter()
            made = await backup(source, f"{tmp}/")
            backup_s = time.perf_counter() - started
            started = time.perf_counter()
            result = await restore(target, made.path)
            restore_s = time.perf_counter() - started
            assert not result.differences, result.differences
        finally:
            if server:
                for name in names:
                    await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine = "postgresql" if server else "sqlite"
    print(
        f"{engine}: {orders} orders, {sum(made.manifest.tables.values())} rows, "
        f"{made.manifest.bytes / 1e6:.1f} MB: backup {backup_s:.2f} s, "
        f"restore and count check {restore_s:.2f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--postgres", metavar="URL")
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.postgres))
