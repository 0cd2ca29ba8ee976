"""Reminders with a clock the tests move: chasing units, escalation on working hours,
the eve of a slot, rating requests, quiet hours, and a restart while due."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import select

from bot import keys
from bot.worktime import WorkTime
from catalog.loader import load_catalog
from storage import models
from storage.order_status import OrderStatus
from storage.repositories.catalog import import_catalog
from tests.fake_clock import SHANGHAI, FakeClock
from tests.ordering_catalog import without_unit, write_catalog
from tests.test_ordering import CODE, move, say
from tests.test_units import invite, outbox_texts, place
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

MONDAY = "2026-12-07 10:00"


async def bot(
    aiohttp_client: Client, db_url: str, tmp_path: Path, clock: FakeClock
) -> WeChatServer:
    catalog = write_catalog(tmp_path, today=clock.now().astimezone(SHANGHAI).date())
    return await start(
        aiohttp_client, db_url, catalog_path=catalog, clock=clock, scheduler_interval=60
    )


async def tick(wechat: WeChatServer) -> None:
    """One poll of each job, as the scheduler would run them."""
    scheduler = wechat.client.app[keys.SCHEDULER]
    await scheduler.run_now("reminders")
    await scheduler.run_now("outbox")


async def status(wechat: WeChatServer, code: str) -> str:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
    assert order is not None
    return order.status


def test_working_hours_skip_nights_weekends_and_holidays() -> None:
    work = WorkTime(SHANGHAI)

    def plus(start: str, hours: float) -> str:
        moment = dt.datetime.fromisoformat(start).replace(tzinfo=SHANGHAI)
        return f"{work.add_working_hours(moment, hours).astimezone(SHANGHAI):%Y-%m-%d %H:%M}"

    assert plus("2026-12-07 10:00", 4) == "2026-12-07 14:00"
    assert plus("2026-12-07 20:00", 4) == "2026-12-08 13:00"  # placed at night
    assert plus("2026-12-11 17:00", 4) == "2026-12-14 12:00"  # Friday → Monday
    assert plus("2026-09-30 17:00", 2) == "2026-10-08 10:00"  # National Day week
    assert plus("2026-10-09 17:00", 2) == "2026-10-10 10:00"  # a Saturday made workday
    assert work.in_quiet_hours(dt.datetime(2026, 12, 7, 23, 0, tzinfo=SHANGHAI))
    assert not work.in_quiet_hours(dt.datetime(2026, 12, 7, 8, 0, tzinfo=SHANGHAI))
    late = dt.datetime(2026, 12, 7, 23, 30, tzinfo=SHANGHAI)
    assert work.after_quiet_hours(late) == dt.datetime(2026, 12, 8, 8, 0, tzinfo=SHANGHAI)


async def test_an_unaccepted_order_is_chased_then_escalated(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await place(wechat, "o_resident")

    clock.set("2026-12-07 13:59")
    await tick(wechat)
    assert not [t for t in await outbox_texts(wechat, "property") if "催办" in t]

    clock.set("2026-12-07 14:01")  # 4 working hours
    await tick(wechat)
    await tick(wechat)
    chased = [t for t in await outbox_texts(wechat, "property") if "催办" in t]
    assert len(chased) == 1 and code in chased[0]
    assert await status(wechat, code) == "dispatched"

    clock.set("2026-12-07 18:01")  # 8 working hours
    await tick(wechat)
    assert await status(wechat, code) == "escalated"
    alerts = [t for t in await outbox_texts(wechat, "community") if "督办" in t]
    assert len(alerts) == 1 and "阳光物业超时未接单" in alerts[0]


async def test_an_accepted_order_is_neither_chased_nor_escalated(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await place(wechat, "o_resident")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}", f"接单 {code}")
    clock.set("2026-12-08 18:00")
    await tick(wechat)
    assert await status(wechat, code) == "accepted"
    assert not [t for t in await outbox_texts(wechat, "property") if "催办" in t]
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        states = set(await session.scalars(select(models.Reminder.status)))
    assert states == {"skipped"}


async def test_the_eve_of_a_slot_reminds_the_resident(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    await say(wechat, "o_zhou", "我想报名健康讲座", "1", "两个人", "13700001111")
    assert CODE.search(await say(wechat, "o_zhou", "确认"))

    clock.set("2026-12-09 19:59")
    await tick(wechat)
    assert await outbox_texts(wechat, "o_zhou") == []
    clock.set("2026-12-09 20:00")
    await tick(wechat)
    [reminder] = await outbox_texts(wechat, "o_zhou")
    assert "12月10日 15:00" in reminder and "二楼会议室" in reminder and "医保卡" in reminder
    outbox = await (await wechat.client.get("/dev/outbox", params={"openid": "o_zhou"})).json()
    assert [m["text"] for m in outbox["messages"]] == [reminder]


async def test_a_completed_order_is_rated_or_the_resident_is_asked(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    first, second = await place(wechat, "o_a"), await place(wechat, "o_b")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    for code in (first, second):
        await say(wechat, "o_worker", f"接单 {code}", f"开始 {code}", f"完成 {code}")
    await say(wechat, "o_b", f"评价 {second} 4")  # rated before the request is due
    clock.advance(hours=2, minutes=1)
    await tick(wechat)
    assert any("回访" in t and "解决了吗" in t for t in await outbox_texts(wechat, "o_a"))
    assert not any("回访" in t for t in await outbox_texts(wechat, "o_b"))


async def test_residents_are_not_messaged_in_quiet_hours(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at("2026-12-07 22:30")
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await place(wechat, "o_night")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}", f"接单 {code}")
    await tick(wechat)

    async def delivered() -> list[str]:
        reply = await wechat.client.get("/dev/outbox", params={"openid": "o_night"})
        return [m["text"] for m in (await reply.json())["messages"]]

    assert await delivered() == []  # deferred, not dropped
    clock.set("2026-12-08 07:59")
    await tick(wechat)
    assert await delivered() == []
    clock.set("2026-12-08 08:00")
    await tick(wechat)
    assert len(await delivered()) == 1 and "接单" in (await delivered())[0]


async def test_reminders_due_during_a_restart_fire_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    before = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await place(before, "o_resident")
    await before.client.close()  # the service is down...
    clock.set("2026-12-07 15:00")  # ...while the reminder comes due
    after = await bot(aiohttp_client, db_url, tmp_path, clock)
    await tick(after)
    await tick(after)
    chased = [t for t in await outbox_texts(after, "property") if "催办" in t]
    assert len(chased) == 1 and code in chased[0]


async def test_a_second_dispatch_is_chased_and_escalated_again(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """Dispatched, chased, escalated, dispatched again by staff: the second round of
    chasing and escalation is sent too (keyed by order code, it used to be dropped)."""
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await place(wechat, "o_again")
    clock.set("2026-12-07 14:01")
    await tick(wechat)
    clock.set("2026-12-07 18:01")
    await tick(wechat)
    assert await status(wechat, code) == "escalated"

    clock.set("2026-12-08 09:00")  # staff send it to the same unit again
    await move(wechat, code, OrderStatus.DISPATCHED)

    clock.set("2026-12-08 13:01")
    await tick(wechat)
    await tick(wechat)
    chased = [t for t in await outbox_texts(wechat, "property") if "催办" in t]
    assert len(chased) == 2
    clock.set("2026-12-08 17:01")
    await tick(wechat)
    alerts = [t for t in await outbox_texts(wechat, "community") if "督办" in t]
    assert len(alerts) == 2


async def test_an_order_of_a_retired_unit_is_still_chased_and_blocks_no_other(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """An open order whose unit was retired from the catalog: its chase used to fail
    (and, before that, roll the whole batch back, every poll, for every community).
    It is now written for the unit's bound members (none here: staff see it as not
    delivered), and the other order is chased as due. A reminder that does fail is
    set aside on its own: tests/test_jobs.py."""
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    await say(wechat, "o_law", "想找律师咨询欠薪的事", "1栋", "13899990001")
    law_order = CODE.search(await say(wechat, "o_law", "确认"))
    assert law_order
    repair = await place(wechat, "o_pipe")

    retired = await asyncio.to_thread(
        without_unit, tmp_path / "catalog.yaml", "law", tmp_path / "without-law.yaml"
    )
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        await import_catalog(session, load_catalog(retired), source="test")
    await app[keys.SCHEDULER].run_now("catalog-refresh")

    clock.set("2026-12-07 14:01")
    await tick(wechat)
    chased = [t for t in await outbox_texts(wechat, "property") if "催办" in t]
    assert len(chased) == 1 and repair in chased[0]
    assert any("催办" in t and law_order[1] in t for t in await outbox_texts(wechat, "law"))
    async with app[keys.SESSIONMAKER]() as session:
        failed = (
            await session.scalars(select(models.Reminder).where(models.Reminder.status == "failed"))
        ).all()
    assert failed == []
