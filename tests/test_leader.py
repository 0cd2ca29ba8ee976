"""One process runs the scheduled jobs; when it goes away another takes over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot import keys
from tests.ordering_catalog import write_catalog
from tests.webhook_app import Client, start


async def test_one_leader_and_a_quick_hand_over(
    db_url: str, aiohttp_client: Client, backend: str
) -> None:
    first = await start(aiohttp_client, db_url, leader_interval=0.2)
    second = await start(aiohttp_client, db_url, leader_interval=0.2)
    one, two = (w.client.app[keys.LEADERSHIP] for w in (first, second))
    if backend == "sqlite":  # the embedded, single-process set-up: always the leader
        assert one.is_leader and two.is_leader
        return
    await asyncio.sleep(0.5)
    assert [one.is_leader, two.is_leader] == [True, False]
    await first.client.close()  # the leader stops (a crash closes its connection too)
    for _ in range(30):
        await asyncio.sleep(0.1)
        if two.is_leader:
            break
    assert two.is_leader, "no hand-over within 3 s"


async def test_ready_only_with_a_current_schema(db_url: str, aiohttp_client: Client) -> None:
    from sqlalchemy import text

    wechat = await start(aiohttp_client, db_url)
    ready = await wechat.client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    async with wechat.client.app[keys.ENGINE].begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        behind = await wechat.client.get("/readyz")
        assert behind.status == 503 and (await behind.json())["status"] == "migrations pending"
        assert (await wechat.client.get("/healthz")).status == 200  # alive, not ready
    finally:
        async with wechat.client.app[keys.ENGINE].begin() as connection:
            head = (await ready.json())["head"]
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )


async def test_metrics_for_prometheus(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    await wechat.text("o_metrics", "帮助")
    await wechat.event("o_metrics", "subscribe")
    body = await (await wechat.client.get("/metrics")).text()
    assert (
        'om_messages_total{kind="text"}' in body and 'om_messages_total{kind="subscribe"}' in body
    )
    assert "om_handler_seconds_bucket" in body and "om_reminder_lag_seconds 0.0" in body


async def test_two_deployments_serving_different_communities_each_have_a_leader(
    db_url: str, aiohttp_client: Client, backend: str, tmp_path: Path
) -> None:
    """One database, two deployments (the demo community, and another): each runs the
    scheduled jobs of its own communities. With one global lock only one did, and the
    other's residents got no reminders, notifications or broadcasts."""
    demo = await start(aiohttp_client, db_url, leader_interval=0.2)
    other = await start(
        aiohttp_client, db_url, leader_interval=0.2, catalog_path=write_catalog(tmp_path)
    )
    await asyncio.sleep(0.5)
    leaders = [w.client.app[keys.LEADERSHIP].is_leader for w in (demo, other)]
    assert leaders == [True, True]
    same = await start(aiohttp_client, db_url, leader_interval=0.2)  # the demo's again
    await asyncio.sleep(0.5)
    expected = backend == "sqlite"  # embedded: every process leads its own
    assert same.client.app[keys.LEADERSHIP].is_leader is expected
