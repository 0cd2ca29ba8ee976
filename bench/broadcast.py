#!/usr/bin/env python3
"""A campaign to 100,000 subscribers against the fake WeChat API: planned and sent as
mass-send batches, as ``order-menu serve`` sends it; and, for comparison in the same
run, the customer-service path it replaced (one message per follower).

    .venv/bin/python bench/broadcast.py [--subscribers 100000] [--compare-seconds 10]
                                        [--database-url URL]

The fake API runs in a child process (its bookkeeping of 100,000 users must not
count against the sender's memory); on exit it reports what it took, so the
benchmark checks that every follower received the campaign exactly once. Printed:

* plan: starting the run, i.e. one delivery row per follower with its channel
  (one INSERT … SELECT with the monthly-quota count) and the batches with their
  clientmsgids;
* send: the mass-send calls (10,000 openids each, at WeChat's pace of at most one a
  second), the time per call, and the time to the last batch taken;
* compare: the same audience by customer-service messages (``MASS_SEND_QUOTA=0``)
  for ``--compare-seconds``, and the time that pace would need for everyone;
* peak RSS of the sender.

The default database is a fresh SQLite file; a PostgreSQL URL is emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import func, select, text, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.jobs.broadcasts import BroadcastSender, mass_quota  # noqa: E402
from bot.orders.effects import Policy  # noqa: E402
from bot.tenants import Account, Accounts  # noqa: E402
from bot.wechat.api import WeChatAPI  # noqa: E402
from catalog.live import LiveCatalog  # noqa: E402
from catalog.loader import demo_catalog_path, load_catalog  # noqa: E402
from storage import migrate, models  # noqa: E402
from storage.batch import BatchDatabase  # noqa: E402
from storage.engine import create_engine, create_sessionmaker  # noqa: E402
from storage.repositories import broadcasts  # noqa: E402
from storage.repositories.broadcasts import Quota  # noqa: E402
from storage.repositories.catalog import import_catalog  # noqa: E402

FAKE = """
import asyncio, json, signal, sys
from tests.fake_wechat import FakeWeChat

async def main() -> None:
    fake = FakeWeChat()
    for n in range(int(sys.argv[1])):
        fake.add_user(f"o_{n:06d}")
    await fake.start()
    print(fake.base_url, fake.app_id, fake.app_secret, flush=True)
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    received = fake.mass_received
    print(json.dumps({
        "jobs": len(fake.mass_jobs),
        "followers": len(received),
        "most": max(received.values(), default=0),
        "service_messages": len(fake.sent),
    }), flush=True)

asyncio.run(main())
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(url: str, subscribers: int, seconds: float) -> None:
    fake = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-c", FAKE, str(subscribers)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        base_url, app_id, app_secret = fake.stdout.readline().split()
        figures = await run(url, subscribers, seconds, base_url, app_id, app_secret)
    finally:
        fake.terminate()
        took = json.loads(fake.stdout.readline() or "{}") if fake.stdout else {}
        fake.wait(10)
    print(f"{'fake WeChat: mass-send jobs taken':<48}{took.get('jobs', 0):>14,}")
    print(f"{'fake WeChat: followers reached by mass send':<48}{took.get('followers', 0):>14,}")
    print(f"{'fake WeChat: most copies one follower got':<48}{took.get('most', 0):>14,}")
    print(json.dumps({**figures, "fake": took}))


async def run(
    url: str, subscribers: int, seconds: float, base_url: str, app_id: str, app_secret: str
) -> dict[str, Any]:
    engine = create_engine(url, pool_size=5)
    await migrate.upgrade(engine)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in models.Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    sessionmaker = create_sessionmaker(engine)
    catalog = load_catalog(demo_catalog_path())
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="demo", source_sha256="bench")
    now = dt.datetime.now(dt.UTC)

    started = time.perf_counter()
    async with engine.begin() as conn:
        chunk = 10_000
        for first in range(0, subscribers, chunk):
            await conn.execute(
                models.Resident.__table__.insert(),
                [
                    {
                        "community_id": "jiedong",
                        "openid": f"o_{n:06d}",
                        "following": True,
                        "tags": [],
                        "last_message_at": now,
                        "created_at": now,
                    }
                    for n in range(first, min(first + chunk, subscribers))
                ],
            )
        await conn.execute(
            text(
                "INSERT INTO subscriptions (resident_id, topic, created_at) "
                "SELECT id, 'anti-fraud', :now FROM residents"
            ),
            {"now": now},
        )
    setup_s = time.perf_counter() - started
    rss_before = rss_mb()

    zone = ZoneInfo(catalog.document.community.timezone)
    started = time.perf_counter()
    run_id = await start_campaign(sessionmaker, now, mass_quota(zone, now))
    plan_s = time.perf_counter() - started
    async with sessionmaker() as session:
        batches = int(
            await session.scalar(select(func.count()).where(models.MassBatch.run_id == run_id)) or 0
        )

    batch_db = BatchDatabase.for_engine(engine)
    quiet_off = Policy(quiet_hours=(dt.time(0), dt.time(0)))
    async with aiohttp.ClientSession() as http:
        api = WeChatAPI(
            app_id=app_id,
            app_secret=app_secret,
            base_url=base_url,
            sessionmaker=sessionmaker,
            community_id="jiedong",
            http=http,
            timeout=30.0,
        )
        live = await LiveCatalog.load(catalog)
        rss_before = rss_mb()  # what a serving process holds anyway (catalog, matcher)
        accounts = Accounts([Account(catalog.community_id, live, api)])
        sender = BroadcastSender(
            sessionmaker, accounts, batch_db, quiet_off, SystemClock(), rate=1e9, budget=120
        )
        began = time.perf_counter()
        taken = await sender.run_once()
        send_s = time.perf_counter() - began
        async with sessionmaker() as session:
            sent = int(
                await session.scalar(
                    select(func.count()).where(
                        models.BroadcastDelivery.run_id == run_id,
                        models.BroadcastDelivery.status == "sent",
                    )
                )
                or 0
            )
        rss_after_mass = rss_mb()

        # The path mass send replaced: the same followers, one customer-service
        # message each (their monthly quota taken as spent), for a while.
        compare_id = await start_campaign(sessionmaker, now, mass_quota(zone, now, 0))
        slow = BroadcastSender(
            sessionmaker, accounts, batch_db, quiet_off, SystemClock(), rate=1e9, budget=seconds
        )
        began = time.perf_counter()
        one_by_one = await slow.run_once()
        one_by_one_rate = one_by_one / (time.perf_counter() - began)
        async with sessionmaker.begin() as session:  # the rest is not sent
            await session.execute(
                update(models.BroadcastRun)
                .where(models.BroadcastRun.id == compare_id)
                .values(status="done")
            )

    await batch_db.close()
    await engine.dispose()

    print(f"database: {engine.dialect.name}; {subscribers:,} subscribers")
    print(f"{'measure':<48}{'value':>14}")
    print("-" * 62)
    print(f"{'set-up: residents + subscriptions (bulk)':<48}{setup_s:>12.2f} s")
    print(f"{'plan: delivery rows, channels, batches':<48}{plan_s:>12.2f} s")
    print(f"{'mass-send batches (calls)':<48}{batches:>14,}")
    print(f"{'send: all batches (≤ 1 call/s, WeChat pace)':<48}{send_s:>12.2f} s")
    print(f"{'  floor set by the pace (1 s between calls)':<48}{max(0, batches - 1):>12.2f} s")
    print(f"{'batches taken by WeChat':<48}{taken:>14,}")
    print(f"{'deliveries recorded sent':<48}{sent:>14,}")
    print(f"{'plan + send, total':<48}{plan_s + send_s:>12.2f} s")
    print(f"{'compare: customer-service messages/s':<48}{one_by_one_rate:>14,.0f}")
    print(f"{'compare: time for all at that pace':<48}{subscribers / one_by_one_rate:>12.0f} s")
    print(
        f"{'peak RSS: after set-up → after mass send':<48}{rss_before:>6.0f} → "
        f"{rss_after_mass:.0f} MB"
    )
    print(f"{'peak RSS: end (after the comparison)':<48}{rss_mb():>12.0f} MB")
    return {
        "plan_s": round(plan_s, 2),
        "send_s": round(send_s, 2),
        "batches": batches,
        "sent": sent,
        "service_per_s": round(one_by_one_rate),
        "peak_rss_mb": round(rss_after_mass),
    }


async def start_campaign(
    sessionmaker: async_sessionmaker[AsyncSession], now: dt.datetime, quota: Quota
) -> int:
    """A campaign due now to every subscriber of 反诈, and its run planned."""
    async with sessionmaker.begin() as session:
        broadcast = models.Broadcast(
            community_id="jiedong",
            topic="anti-fraud",
            title="反诈提醒",
            text="陌生来电说退款、中奖，一律挂断。",
            send_at=now,
            status="done",  # planned here, not by the sender
            created_at=now,
        )
        session.add(broadcast)
        await session.flush()
        run_row = await broadcasts.start_run(
            session, broadcast, now + dt.timedelta(microseconds=broadcast.id), quota, 10_000
        )
        assert run_row is not None
        return run_row.id


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--compare-seconds", dest="seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/broadcast.db"
    asyncio.run(main(url, args.subscribers, args.seconds))
