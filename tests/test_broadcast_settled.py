"""A send that outlasts its lease: the delivery is settled as ``unknown`` by another
process (it may have arrived) before the first sender records its outcome. That
outcome must not revive the delivery: recorded as ``pending`` it would be sent twice.

The interleaving is reproduced step by step with the real repository functions the
sender and the leader's settling use (claim → settle → finish)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from catalog.loader import demo_catalog_path, load_catalog
from storage import models
from storage.engine import create_engine, create_sessionmaker
from storage.repositories import broadcasts as repo
from storage.repositories.catalog import import_catalog


async def test_a_delivery_settled_as_unknown_is_not_revived_by_a_late_outcome(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker.begin() as session:
        await import_catalog(session, load_catalog(demo_catalog_path()), source="demo")
        resident = models.Resident(community_id="jiedong", openid="o_late", tags=[])
        broadcast = models.Broadcast(
            community_id="jiedong",
            topic="anti-fraud",
            title="反诈提醒",
            text="陌生来电说退款，一律挂断。",
            send_at=now,
            status="scheduled",
        )
        session.add_all([resident, broadcast])
        await session.flush()
        run = models.BroadcastRun(broadcast_id=broadcast.id, due_at=now)
        session.add(run)
        await session.flush()
        session.add(models.BroadcastDelivery(run_id=run.id, resident_id=resident.id))

    async with engine.begin() as connection:  # the sender claims it, and starts sending
        claimed = await connection.run_sync(lambda c: repo.claim_next(c, now=now))
    assert claimed is not None

    async with sessionmaker.begin() as session:  # its lease runs out: settled elsewhere
        assert await repo.settle_in_flight(session, older_than=now + dt.timedelta(hours=1))

    async with engine.begin() as connection:  # WeChat was slow and said "try again"
        recorded = await connection.run_sync(
            lambda c: repo.finish(c, claimed.id, "pending", retry_at=now)
        )
        again = await connection.run_sync(
            lambda c: repo.claim_next(c, now=now + dt.timedelta(minutes=1))
        )
    assert not recorded and again is None  # not revived, so never sent twice
    async with sessionmaker() as session:
        delivery = await session.scalar(select(models.BroadcastDelivery))
    assert delivery is not None and delivery.status == "unknown"
    await engine.dispose()
