"""Kill the sending process (SIGKILL, a real subprocess) mid-campaign and start it
again.

- Mass send: the process is killed after WeChat took a batch and before the process
  could record it (the fake acts on the call and holds its answer). The restarted
  process calls that batch again with the same clientmsgid; WeChat answers 45065 and
  sends nothing: every follower gets the campaign exactly once.
- Customer-service messages (mass send off): every eligible resident is served once,
  none twice, none missed, but for the one delivery that may have been in flight,
  which is reported as unknown (that API has no idempotency key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from catalog.loader import demo_catalog_path, load_catalog
from storage import models
from storage.engine import create_engine, create_sessionmaker
from storage.repositories.catalog import import_catalog
from tests.fake_wechat import MASS_SEND_PATH, FakeWeChat, fake_wechat_fixture
from tests.servers import Process, spawn_serve

fake_wechat = fake_wechat_fixture()
RESIDENTS = 150


def serve(db_url: str, fake: FakeWeChat, workdir: Path, **settings: str) -> Process:
    process, _ = spawn_serve(
        db_url,
        workdir,
        token="kill-test-token",
        WECHAT_APP_ID=fake.app_id,
        WECHAT_APP_SECRET=fake.app_secret,
        WECHAT_API_BASE=fake.base_url,
        SCHEDULER_INTERVAL="0.2",
        BROADCAST_RATE="300",
        BROADCAST_LEASE="2",
        QUIET_HOURS="00:00-00:00",
        LOG_LEVEL="WARNING",
        **settings,
    )
    return process


async def a_campaign_to_subscribers(db_url: str, fake: FakeWeChat) -> None:
    """The demo community, RESIDENTS subscribers to 反诈 who all wrote today, and a
    campaign due now."""
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker.begin() as session:
        catalog = load_catalog(demo_catalog_path())
        await import_catalog(session, catalog, source="demo", source_sha256="kill-test")
        for n in range(RESIDENTS):
            resident = models.Resident(
                community_id="jiedong", openid=f"o_{n:03d}", tags=[], last_message_at=now
            )
            session.add(resident)
            await session.flush()
            session.add(models.Subscription(resident_id=resident.id, topic="anti-fraud"))
            fake.add_user(f"o_{n:03d}")
        session.add(
            models.Broadcast(
                community_id="jiedong",
                topic="anti-fraud",
                title="反诈提醒",
                text="陌生来电说退款、中奖，一律挂断。",
                send_at=now,
                status="scheduled",
            )
        )
    await engine.dispose()


async def until(condition: object, what: str, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def open_deliveries(db_url: str) -> int:
    engine = create_engine(db_url)
    async with create_sessionmaker(engine)() as session:
        n = await session.scalar(
            select(func.count()).where(models.BroadcastDelivery.status.in_(("pending", "sending")))
        )
    await engine.dispose()
    return int(n or 0)


async def finish(db_url: str) -> None:
    for _ in range(600):
        if await open_deliveries(db_url) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the restarted process did not finish the campaign")


def stop(process: Process) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_killed_after_wechat_took_a_mass_batch_the_restart_sends_nothing_twice(
    db_url: str, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    await a_campaign_to_subscribers(db_url, fake_wechat)
    process = serve(db_url, fake_wechat, tmp_path, MASS_SEND_BATCH="50")  # 3 batches
    try:
        await until(lambda: len(fake_wechat.mass_jobs) >= 1, "the first batch")
        # The next call is acted on at once (WeChat sends the batch) and its answer
        # held: the process dies knowing only that it called.
        fake_wechat.set_slow(MASS_SEND_PATH, 60)
        taken = len(fake_wechat.mass_jobs)
        await until(lambda: len(fake_wechat.mass_jobs) > taken, "a batch taken by WeChat")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        fake_wechat.set_slow(MASS_SEND_PATH, 0)
        assert len(fake_wechat.mass_jobs) < 3, "too late: the campaign had finished"

        process = serve(db_url, fake_wechat, tmp_path, MASS_SEND_BATCH="50")
        await finish(db_url)
    finally:
        stop(process)

    calls = [r.body for r in fake_wechat.calls(MASS_SEND_PATH)]
    assert all(body["clientmsgid"] for body in calls)
    repeated = [n for n in Counter(b["clientmsgid"] for b in calls).values() if n > 1]
    assert repeated, "the killed batch was never called again"
    assert len(fake_wechat.mass_jobs) == 3  # the repeat made no job of its own
    assert fake_wechat.mass_received == Counter({f"o_{n:03d}": 1 for n in range(RESIDENTS)})
    assert not fake_wechat.sent  # and nobody got a customer-service copy
    engine = create_engine(db_url)
    async with create_sessionmaker(engine)() as session:
        batches = Counter((await session.scalars(select(models.MassBatch.status))).all())
        deliveries = Counter((await session.scalars(select(models.BroadcastDelivery.status))).all())
    await engine.dispose()
    assert batches == {"submitted": 3}
    assert deliveries == {"sent": RESIDENTS}


async def test_killing_the_sender_mid_customer_service_sends_loses_and_repeats_nothing(
    db_url: str, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    await a_campaign_to_subscribers(db_url, fake_wechat)
    process = serve(db_url, fake_wechat, tmp_path, MASS_SEND_QUOTA="0")
    try:
        await until(lambda: len(fake_wechat.sent) >= 40, "the broadcast to start")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = len(fake_wechat.sent)
        assert killed_at < RESIDENTS, "too late: the broadcast had finished"
        process = serve(db_url, fake_wechat, tmp_path, MASS_SEND_QUOTA="0")
        await finish(db_url)
    finally:
        stop(process)

    received = Counter(m["touser"] for m in fake_wechat.sent)
    assert all(n == 1 for n in received.values()), "someone got the notice twice"
    engine = create_engine(db_url)
    async with create_sessionmaker(engine)() as session:
        rows = (
            await session.execute(
                select(models.Resident.openid, models.BroadcastDelivery.status).join(
                    models.Resident, models.BroadcastDelivery.resident_id == models.Resident.id
                )
            )
        ).all()
    await engine.dispose()
    status = dict(rows)
    assert len(status) == RESIDENTS
    unknown = [openid for openid, s in status.items() if s == "unknown"]
    assert len(unknown) <= 1  # at most the one in flight when the process died
    for openid, state in status.items():
        if state == "sent":
            assert received[openid] == 1
