#!/usr/bin/env python3
"""A broadcast to 100,000 subscribers against the fake WeChat API (rate limit off).

    .venv/bin/python bench/broadcast.py [--subscribers 100000] [--seconds 20] [--database-url URL]

The fake API runs in a child process (its bookkeeping of 100,000 users must not
count against the sender's memory). This process is the sender, as in
``order-menu serve``. Printed:

* materialise: starting the run, i.e. writing one delivery row per recipient
  (one INSERT … SELECT over residents and subscriptions);
* sustained sends/s over ``--seconds`` of sending, and the time per delivery (claim
  and mark committed separately, plus the API call) against a bare API call;
* peak RSS of the sender (target ≤ 200 MB).

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.jobs.broadcasts import BroadcastSender  # noqa: E402
from bot.orders.effects import Policy  # noqa: E402
from bot.tenants import Account, Accounts  # noqa: E402
from bot.wechat.api import WeChatAPI  # noqa: E402
from catalog.live import LiveCatalog  # noqa: E402
from catalog.loader import demo_catalog_path, load_catalog  # noqa: E402
from storage import migrate, models  # noqa: E402
from storage.batch import BatchDatabase  # noqa: E402
from storage.engine import create_engine, create_sessionmaker  # noqa: E402
from storage.repositories import broadcasts  # noqa: E402
from storage.repositories.catalog import import_catalog  # noqa: E402

FAKE = """
import asyncio, sys
from tests.fake_wechat import FakeWeChat

async def main() -> None:
    fake = FakeWeChat()
    for n in range(int(sys.argv[1])):
        fake.add_user(f"o_{n:06d}")
    await fake.start()
    print(fake.base_url, fake.app_id, fake.app_secret, flush=True)
    await asyncio.Event().wait()

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
        await run(url, subscribers, seconds, base_url, app_id, app_secret)
    finally:
        fake.terminate()
        fake.wait(10)


async def run(
    url: str, subscribers: int, seconds: float, base_url: str, app_id: str, app_secret: str
) -> None:
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

    async with sessionmaker.begin() as session:
        broadcast = models.Broadcast(
            community_id="jiedong",
            topic="anti-fraud",
            title="反诈提醒",
            text="陌生来电说退款、中奖，一律挂断。",
            send_at=now,
            status="scheduled",
            created_at=now,
        )
        session.add(broadcast)
    started = time.perf_counter()
    async with sessionmaker.begin() as session:
        row = await session.get(models.Broadcast, broadcast.id)
        assert row is not None
        run_row = await broadcasts.start_run(session, row, now)
        row.status = "done"
    materialise_s = time.perf_counter() - started
    assert run_row is not None

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
        )
        # A bare API call, for comparison with a whole delivery.
        await api.send_text("o_000000", "warm-up")
        calls = 200
        began = time.perf_counter()
        for _ in range(calls):
            await api.send_text("o_000001", "bare call")
        bare_ms = (time.perf_counter() - began) / calls * 1000

        live = await LiveCatalog.load(catalog)
        sender = BroadcastSender(
            sessionmaker,
            Accounts([Account(catalog.community_id, live, api)]),
            batch_db,
            quiet_off,
            SystemClock(),
            rate=1e9,
            budget=seconds,
        )
        began = time.perf_counter()
        sent = await sender.run_once()
        elapsed = time.perf_counter() - began

    async with sessionmaker() as session:
        done = await session.scalar(
            select(text("count(*)"))
            .select_from(models.BroadcastDelivery)
            .where(models.BroadcastDelivery.status == "sent")
        )
    await batch_db.close()
    await engine.dispose()

    rate = sent / elapsed
    print(f"database: {engine.dialect.name}")
    print(f"{'measure':<44}{'value':>14}")
    print("-" * 58)
    print(f"{'set-up: residents + subscriptions (bulk)':<44}{setup_s:>12.2f} s")
    print(f"{f'materialise {subscribers:,} delivery rows':<44}{materialise_s:>12.2f} s")
    print(f"{'sustained sends/s (' + format(seconds, 'g') + ' s)':<44}{rate:>14,.0f}")
    print(f"{'ms per delivery (claim, send, mark)':<44}{1000 / rate:>12.2f} ms")
    print(f"{'ms per bare API call':<44}{bare_ms:>12.2f} ms")
    print(f"{'overhead per delivery':<44}{1000 / rate - bare_ms:>12.2f} ms")
    print(f"{'sent (rows marked sent)':<44}{done or 0:>14,}")
    print(f"{'time for all at this rate':<44}{subscribers / rate / 60:>10.1f} min")
    print(f"{'peak RSS: after set-up → end':<44}{rss_before:>6.0f} → {rss_mb():.0f} MB")
    print(json.dumps({"sends_per_s": round(rate), "peak_rss_mb": round(rss_mb())}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/broadcast.db"
    asyncio.run(main(url, args.subscribers, args.seconds))
