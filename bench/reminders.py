#!/usr/bin/env python3
"""Reminders at scale: scheduling 100,000, starting the scheduler over them, and how
late a batch of 1,000 due at the same moment fires.

    .venv/bin/python bench/reminders.py [--database-url URL] [--pending 100000] [--burst 1000]

Uses a fresh SQLite file by default (or the PostgreSQL database you name: its tables
are emptied first). Prints a table:

* schedule: bulk-inserting the pending reminders (one executemany per 10,000);
* start-up: building the runner and the APScheduler jobs and running the first poll
  over the full table (nothing due yet);
* firing: 1,000 reminders on 1,000 dispatched orders, all due at the same second,
  each chasing its unit (an outbox row per reminder); lateness = fired_at - due_at,
  with the scheduler polling every second as in production;
* memory: the process's peak RSS.

Targets (issue 6): scheduling 100k ≤ 10 s, start-up ≤ 2 s, firing p99 ≤ 2 s late.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bot.clock import SystemClock
from bot.jobs.queue import JobQueue
from bot.jobs.reminders import ReminderRunner
from bot.orders.effects import Policy
from bot.tenants import Account, Accounts
from bot.wechat.customer_service import DevOutbox
from catalog.live import LiveCatalog
from catalog.loader import demo_catalog_path, load_catalog
from storage import migrate, models
from storage.engine import create_engine, create_sessionmaker
from storage.order_status import OrderStatus
from storage.repositories import reminders
from storage.repositories.catalog import import_catalog


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(url: str, pending: int, burst: int) -> None:
    engine = create_engine(url, pool_size=5)
    await migrate.upgrade(engine)
    sessionmaker = create_sessionmaker(engine)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in models.Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    catalog = load_catalog(demo_catalog_path())
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="demo", source_sha256="bench")
    community = catalog.community_id
    rss_start = rss_mb()

    # 1. Schedule the pending reminders, spread over the next 30 days.
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    chunk = 10_000
    for first in range(0, pending, chunk):
        rows: list[dict[str, object]] = [
            {
                "community_id": community,
                "key": f"bench:{n}",
                "kind": "rate_ask",
                "due_at": now + dt.timedelta(hours=1, seconds=n * 25),
            }
            for n in range(first, min(first + chunk, pending))
        ]
        async with sessionmaker.begin() as session:
            await reminders.schedule_many(session, rows)
    schedule_s = time.perf_counter() - started

    # 2. Start the scheduler over the full table and run the first poll.
    started = time.perf_counter()
    live = await LiveCatalog.load(catalog)
    accounts = Accounts([Account(catalog.community_id, live, DevOutbox())])
    runner = ReminderRunner(sessionmaker, accounts, Policy(), SystemClock())
    scheduler = JobQueue()
    scheduler.every(1.0, "reminders", runner.run_once)
    scheduler.start()
    await scheduler.run_now("reminders")
    startup_s = time.perf_counter() - started

    # 3. A burst of reminders on dispatched orders, all due at the same second.
    async with sessionmaker.begin() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == "home-repair"))
        assert item is not None
        resident = models.Resident(community_id=community, openid="o_bench", tags=[])
        session.add(resident)
        await session.flush()
        orders = [
            models.Order(
                community_id=community,
                code=f"B{n:05d}",
                item_id=item.id,
                unit_id=item.unit_id,
                resident_id=resident.id,
                status=OrderStatus.DISPATCHED.value,
                answers={},
            )
            for n in range(burst)
        ]
        session.add_all(orders)
        await session.flush()
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        await reminders.schedule_many(
            session,
            [
                {
                    "community_id": community,
                    "key": f"burst:{o.code}",
                    "kind": "accept_remind",
                    "order_id": o.id,
                    "due_at": due,
                }
                for o in orders
            ],
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        async with sessionmaker() as session:
            left = await session.scalar(
                select(models.Reminder.id)
                .where(models.Reminder.key.like("burst:%"), models.Reminder.status == "pending")
                .limit(1)
            )
        if left is None:
            break
    async with sessionmaker() as session:
        fired = (
            await session.execute(
                select(
                    models.Reminder.fired_at, models.Reminder.due_at, models.Reminder.status
                ).where(models.Reminder.key.like("burst:%"))
            )
        ).all()
        chased = await session.scalar(
            select(text("count(*)"))
            .select_from(models.OutboxMessage)
            .where(models.OutboxMessage.key.like("remind:%"))
        )
    await scheduler.stop()
    late = sorted((f - d).total_seconds() for f, d, s in fired if f is not None)
    statuses = {s for _, _, s in fired}
    await engine.dispose()

    def pct(p: float) -> float:
        return late[min(len(late) - 1, int(p * len(late)))] if late else float("nan")

    print(f"database: {engine.dialect.name}")
    print(f"{'measure':<38}{'value':>12}  target")
    print("-" * 60)
    label = f"schedule {pending:,} reminders (bulk)"
    print(f"{label:<38}{schedule_s:>10.2f} s  ≤ 10 s")
    print(f"{'scheduler start-up + first poll':<38}{startup_s:>10.2f} s  ≤ 2 s")
    print(f"{f'burst of {burst}: fired':<38}{len(late):>12,}  all ({statuses})")
    print(f"{'burst: units chased (outbox rows)':<38}{chased or 0:>12,}")
    print(f"{'burst lateness p50':<38}{statistics.median(late) if late else float('nan'):>10.2f} s")
    print(f"{'burst lateness p99':<38}{pct(0.99):>10.2f} s  ≤ 2 s")
    print(f"{'burst lateness max':<38}{(late[-1] if late else float('nan')):>10.2f} s")
    print(f"{'peak RSS (start → end)':<38}{rss_start:>6.0f} → {rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=1_000)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/reminders.db"
    asyncio.run(main(url, args.pending, args.burst))
