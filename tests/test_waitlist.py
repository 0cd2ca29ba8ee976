"""Promises kept: residents told 「有空位会通知您」 are offered a freed place, in turn.

Through the real webhook: a slot fills up, residents join its waiting list, a
booking is cancelled; the first in line is offered the place (once, through the
outbox) and it is held for them; 要 books it through the ordinary form, 不要了 or a
hold running out hands it to the next. Places never overbook, whatever the order in
which cancellations, offers and answers meet.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.orders import domain
from storage import models
from storage.repositories.catalog import live_catalog
from tests.fake_clock import SHANGHAI, FakeClock
from tests.ordering_catalog import write_catalog
from tests.test_ordering import CODE, say
from tests.test_units import outbox_texts
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

MONDAY = "2026-12-07 10:00"
OFFER = "有空位了"


async def bot(
    aiohttp_client: Client, db_url: str, tmp_path: Path, *, capacity: int, clock: FakeClock
) -> WeChatServer:
    catalog = write_catalog(
        tmp_path, capacity=capacity, today=clock.now().astimezone(SHANGHAI).date()
    )
    return await start(
        aiohttp_client, db_url, catalog_path=catalog, clock=clock, scheduler_interval=60
    )


async def fill_in(wechat: WeChatServer, openid: str, reply: str, phone: str) -> str:
    """Answer the 义诊 form's questions until the summary."""
    for _ in range(5):
        if "请核对" in reply:
            return reply
        if "哪一场" in reply:
            reply = await say(wechat, openid, "1")
        elif "几位" in reply:
            reply = await say(wechat, openid, "1位")
        elif "手机" in reply:
            reply = await say(wechat, openid, phone)
        else:
            raise AssertionError(reply)
    raise AssertionError(reply)


async def book(wechat: WeChatServer, openid: str, phone: str) -> str:
    """Book the 义诊 and confirm: the order code."""
    await fill_in(wechat, openid, await say(wechat, openid, "我想报名义诊"), phone)
    placed = CODE.search(await say(wechat, openid, "确认"))
    assert placed is not None
    return placed[1]


async def queue(wechat: WeChatServer, first: str, *waiting: str) -> list[str]:
    """The slot fills up while others fill in the form: ``waiting`` reach 确认 after
    ``first`` took the last place, find it full, and join the waiting list in this
    order. ``first`` may be several residents (``a+b``); their order codes."""
    for n, openid in enumerate(waiting):
        await fill_in(wechat, openid, await say(wechat, openid, "我想报名义诊"), f"1370000{n:04d}")
    codes = [await book(wechat, openid, "13899990000") for openid in first.split("+")]
    for openid in waiting:
        assert "约满了" in await say(wechat, openid, "确认")
        assert "通知您" in await say(wechat, openid, "候补")
    return codes


async def offers_to(wechat: WeChatServer, openid: str) -> list[str]:
    return [t for t in await outbox_texts(wechat, openid) if OFFER in t]


async def booked(wechat: WeChatServer) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(
            select(models.ItemSlot).where(models.ItemSlot.key == "clinic-day")
        )
    assert row is not None
    return row.booked


async def open_orders_in_slot(wechat: WeChatServer) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return int(
            await session.scalar(
                select(func.count(models.Order.id))
                .join(models.ItemSlot, models.Order.slot_id == models.ItemSlot.id)
                .where(
                    models.ItemSlot.key == "clinic-day",
                    models.Order.status.not_in(["cancelled", "closed"]),
                )
            )
            or 0
        )


async def entries(wechat: WeChatServer) -> dict[str, str]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(models.Resident.openid, models.WaitlistEntry.status).join(
                models.Resident, models.WaitlistEntry.resident_id == models.Resident.id
            )
        )
        return {str(openid): status for openid, status in rows}


async def test_a_cancelled_place_is_offered_to_the_first_waiting_who_books_it(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, tmp_path, capacity=1, clock=FakeClock.at(MONDAY))
    [code] = await queue(wechat, "o_first", "o_wait1", "o_wait2")
    assert await entries(wechat) == {"o_wait1": "waiting", "o_wait2": "waiting"}
    assert await booked(wechat) == 1

    assert "已经取消" in await say(wechat, "o_first", f"取消订单 {code}")
    [offer] = await offers_to(wechat, "o_wait1")
    assert "大型义诊" in offer and "回复“要”" in offer and "不要了" in offer
    assert await offers_to(wechat, "o_wait2") == []
    assert await entries(wechat) == {"o_wait1": "offered", "o_wait2": "waiting"}
    assert await booked(wechat) == 1  # held for o_wait1: nobody else can take it

    taken = await say(wechat, "o_wait1", "要")
    assert "名额给您留着" in taken, taken
    summary = await fill_in(wechat, "o_wait1", taken, "13700000000")
    assert "12月10日" in summary
    placed = CODE.search(await say(wechat, "o_wait1", "确认"))
    assert placed is not None
    assert placed[1] in "".join(await outbox_texts(wechat, "clinic"))  # the unit is told

    assert await entries(wechat) == {"o_wait1": "accepted", "o_wait2": "waiting"}
    assert await booked(wechat) == 1 and await open_orders_in_slot(wechat) == 1
    assert len(await offers_to(wechat, "o_wait1")) == 1 and await offers_to(wechat, "o_wait2") == []


async def test_a_hold_that_runs_out_or_is_declined_goes_to_the_next(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, capacity=1, clock=clock)
    [code] = await queue(wechat, "o_first", "o_w1", "o_w2", "o_w3")
    await say(wechat, "o_first", f"取消订单 {code}")
    assert len(await offers_to(wechat, "o_w1")) == 1
    scheduler = wechat.client.app[keys.SCHEDULER]

    clock.advance(hours=1, minutes=59)
    await scheduler.run_now("waitlist")
    assert (await entries(wechat))["o_w1"] == "offered"

    clock.advance(minutes=2)  # the two hours are up
    await scheduler.run_now("waitlist")
    await scheduler.run_now("waitlist")  # a second poll changes nothing
    assert await entries(wechat) == {"o_w1": "expired", "o_w2": "offered", "o_w3": "waiting"}
    assert [t for t in await outbox_texts(wechat, "o_w1") if "保留时间" in t]
    assert len(await offers_to(wechat, "o_w2")) == 1 and await offers_to(wechat, "o_w3") == []
    assert "留着" not in await say(wechat, "o_w1", "要")  # too late: no longer theirs

    assert "让给下一位" in await say(wechat, "o_w2", "不要了")
    assert await entries(wechat) == {"o_w1": "expired", "o_w2": "declined", "o_w3": "offered"}
    assert len(await offers_to(wechat, "o_w3")) == 1
    await fill_in(wechat, "o_w3", await say(wechat, "o_w3", "好的"), "13700000002")
    assert CODE.search(await say(wechat, "o_w3", "确认"))
    assert await booked(wechat) == 1 and await open_orders_in_slot(wechat) == 1
    for openid in ("o_w1", "o_w2", "o_w3"):
        assert len(await offers_to(wechat, openid)) == 1, openid


async def test_two_places_freed_at_once_go_to_two_residents_and_never_overbook(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, tmp_path, capacity=2, clock=FakeClock.at(MONDAY))
    a, b = await queue(wechat, "o_a+o_b", "o_w1", "o_w2", "o_w3")
    cancelled = await asyncio.gather(
        say(wechat, "o_a", f"取消订单 {a}"), say(wechat, "o_b", f"取消订单 {b}")
    )
    assert all("已经取消" in reply for reply in cancelled)
    assert await entries(wechat) == {"o_w1": "offered", "o_w2": "offered", "o_w3": "waiting"}
    assert await booked(wechat) == 2
    for openid in ("o_w1", "o_w2"):
        assert len(await offers_to(wechat, openid)) == 1
        await fill_in(wechat, openid, await say(wechat, openid, "要"), "13700000009")
    await asyncio.gather(say(wechat, "o_w1", "确认"), say(wechat, "o_w2", "确认"))
    assert await booked(wechat) == 2 and await open_orders_in_slot(wechat) == 2
    assert await offers_to(wechat, "o_w3") == []


async def test_a_cancellation_reading_the_list_while_another_offers_skips_to_the_next(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """PostgreSQL: the second cancellation reads the waiting list while the first one's
    offer to o_w1 is not yet committed, and blocks on that row; once the first
    commits, the conditional update finds o_w1 taken and offers o_w2. (SQLite starts
    every writing transaction with BEGIN IMMEDIATE: the second cannot read before the
    first commits, and the test above covers it.)"""
    if db_url.startswith("sqlite"):
        pytest.skip("writers never interleave on SQLite (BEGIN IMMEDIATE)")
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, capacity=2, clock=clock)
    a, b = await queue(wechat, "o_a+o_b", "o_w1", "o_w2", "o_w3")
    app = wechat.client.app
    sessionmaker: async_sessionmaker[AsyncSession] = app[keys.SESSIONMAKER]

    async def cancel(session: AsyncSession, openid: str, code: str) -> None:
        catalog = await live_catalog(session, "testville")
        assert catalog is not None
        await domain.cancel_by_resident(
            session,
            catalog=catalog,
            policy=app[keys.POLICY],
            now=clock.now(),
            openid=openid,
            code=code,
        )

    async with sessionmaker() as first, sessionmaker() as second, first.begin():
        await cancel(first, "o_a", a)  # offers o_w1, not committed yet
        async with second.begin():
            later = asyncio.create_task(cancel(second, "o_b", b))
            await waiting_for_a_lock(sessionmaker, later)
            await first.commit()
            await later
    assert await entries(wechat) == {"o_w1": "offered", "o_w2": "offered", "o_w3": "waiting"}
    assert await booked(wechat) == 2
    assert [len(await offers_to(wechat, o)) for o in ("o_w1", "o_w2", "o_w3")] == [1, 1, 0]


async def waiting_for_a_lock(
    sessionmaker: async_sessionmaker[AsyncSession], task: asyncio.Task[None]
) -> None:
    """Until a transaction of this database waits for a row lock (``task``'s)."""
    for _ in range(200):
        assert not task.done(), "the second cancellation did not wait for the first"
        async with sessionmaker() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no transaction waited for a lock")
