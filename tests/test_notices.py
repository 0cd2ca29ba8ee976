"""Notices that answer first (停水 for 1栋): published by staff over HTTP, read by the
residents of that building through the real /wechat webhook, once, before any order;
报修 still places the order; other buildings and expired notices say nothing."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from bot import keys
from storage import models
from tests.fake_clock import FakeClock
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import say
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start

CODE = re.compile(r"订单号[：:]?\s*([2-9A-Z]{6})")
NOTICE = "1栋今日停水，预计18点恢复"


async def publish(staff: object, **fields: str) -> object:
    token = await csrf_of(staff, "/console/notices")  # type: ignore[arg-type]
    return await staff.post(  # type: ignore[attr-defined]
        "/console/notices", data={"csrf": token, **fields}, allow_redirects=False
    )


async def orders_of(wechat: object, openid: str) -> list[str]:
    app = wechat.client.app  # type: ignore[attr-defined]
    async with app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(models.Order.code)
            .join(models.Resident, models.Resident.id == models.Order.resident_id)
            .where(models.Resident.openid == openid)
        )
        return list(rows)


async def test_a_water_cut_notice_answers_its_building_first_and_the_order_can_still_be_placed(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at("2026-12-09 09:00")
    wechat = await start(aiohttp_client, db_url, clock=clock, catalog_path=write_catalog(tmp_path))
    # Residents the bot knows the building of (from an earlier repair each).
    for openid, building in (("o_one", "1栋"), ("o_later", "一栋3单元"), ("o_seven", "7栋")):
        await say(wechat, openid, "水管爆了", building, "13899990000")
        assert CODE.search(await say(wechat, openid, "确认"))

    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    refused = await publish(staff, scope="building", building="1栋", text=NOTICE, until="")
    assert refused.status == 400  # type: ignore[attr-defined]
    assert "结束时间" in await refused.text()  # type: ignore[attr-defined]
    done = await publish(
        staff, scope="building", building="1栋", text=NOTICE, until="2026-12-09T18:00"
    )
    assert done.status == 302, await done.text()  # type: ignore[attr-defined]
    shown = visible_text(await (await staff.get("/console/notices")).text())
    assert NOTICE in shown and "生效中" in shown and "已提醒 0 位居民" in shown
    assert english_words(shown) == [], shown

    # 1栋: the notice first, and a way to report anyway.
    reply = await say(wechat, "o_one", "家里没水了")
    assert NOTICE in reply and "今天18:00" in reply and "报修" in reply, reply
    reply = await say(wechat, "o_one", "报修")
    assert "水电维修" in reply, reply
    before = len(await orders_of(wechat, "o_one"))
    reply = await say(wechat, "o_one", "1栋", "13899990000", "确认")
    assert CODE.search(reply), reply
    assert len(await orders_of(wechat, "o_one")) == before + 1

    # Told once: the same words again go straight to ordering.
    assert NOTICE not in await say(wechat, "o_one", "取消", "水龙头不出水")
    await say(wechat, "o_one", "取消")

    # Another building hears nothing of it.
    reply = await say(wechat, "o_seven", "家里没水了")
    assert NOTICE not in reply
    await say(wechat, "o_seven", "取消")

    # 不用 leaves it there; the console counts who was told and who reported.
    reply = await say(wechat, "o_later", "水龙头不出水")
    assert NOTICE in reply
    assert "好的" in await say(wechat, "o_later", "不用了")
    shown = visible_text(await (await staff.get("/console/notices")).text())
    assert "已提醒 2 位居民，其中 1 位仍然报修" in shown, shown

    # After its end time, nothing is said of it.
    clock.set("2026-12-09 18:01")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(models.NoticeAnswer.__table__.delete())
    reply = await say(wechat, "o_one", "家里没水了")
    assert NOTICE not in reply, reply
    shown = visible_text(await (await staff.get("/console/notices")).text())
    assert "已结束" in shown
    await staff.close()  # type: ignore[attr-defined]


async def test_a_grid_notice_can_be_withdrawn_and_then_says_nothing(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at("2026-12-09 09:00")
    wechat = await start(aiohttp_client, db_url, clock=clock, catalog_path=write_catalog(tmp_path))
    await say(wechat, "o_two", "水管爆了", "2栋", "13899990000")
    await say(wechat, "o_two", "确认")
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "unit1", "unit", unit="property")
    unit = await login(wechat, "unit1")
    assert (await unit.get("/console/notices", allow_redirects=False)).status == 403
    await unit.close()
    staff = await login(wechat, "staff1")
    text = "第一网格明天上午9点到12点停电检修"
    done = await publish(staff, scope="grid", grid="g1", text=text, until="2026-12-10 12:00")
    assert done.status == 302
    body = await (await staff.get("/console/notices")).text()
    withdraw = re.search(r'action="(/console/notices/\d+/withdraw)"', body)
    assert withdraw is not None
    # Without the form's token nothing changes.
    forged = await staff.post(withdraw[1], data={"csrf": "x"}, allow_redirects=False)
    assert forged.status == 403
    assert text in await say(wechat, "o_two", "家里没电了")
    await say(wechat, "o_two", "取消")
    token = await csrf_of(staff, "/console/notices")
    withdrawn = await staff.post(withdraw[1], data={"csrf": token}, allow_redirects=False)
    assert withdrawn.status == 302
    assert "已撤回" in visible_text(await (await staff.get("/console/notices")).text())
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(models.NoticeAnswer.__table__.delete())
    assert text not in await say(wechat, "o_two", "家里没电了")
    await staff.close()
