"""我也遇到, through the real webhook: residents reporting the same problem in one
building make one order the unit works once, and each of them hears of every step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot import keys
from storage import models
from storage.repositories import followers
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, login
from tests.test_ordering import CODE, orders_of, say, start_order
from tests.test_units import invite, outbox_texts
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer


async def report(wechat: WeChatServer, openid: str, need: str, building: str) -> str:
    """A need, then where: the bot's answer to the building."""
    await start_order(wechat, openid, need)
    return await say(wechat, openid, building)


async def place(wechat: WeChatServer, openid: str, need: str, building: str) -> str:
    asked = await report(wechat, openid, need, building)
    assert "手机号" in asked, asked  # no order there to join: the form goes on
    found = CODE.search(await say(wechat, openid, "13899990000", "确认"))
    assert found is not None
    return found[1]


async def followers_of(wechat: WeChatServer, code: str) -> list[tuple[str, str]]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(models.Resident.openid, models.OrderFollower.status)
            .join(models.OrderFollower, models.OrderFollower.resident_id == models.Resident.id)
            .join(models.Order, models.OrderFollower.order_id == models.Order.id)
            .where(models.Order.code == code)
            .order_by(models.OrderFollower.id)
        )
        return [(str(openid), status) for openid, status in rows]


def count(texts: list[str], *words: str) -> int:
    return sum(all(w in t for w in words) for t in texts)


async def test_two_residents_one_leak_one_order_both_told_each_step_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_first", "楼道的水管漏水了", "1栋")

    offer = await report(wechat, "o_second", "我家楼下水管也在漏水", "一栋2单元")
    assert "1栋已经有人报了同样的问题" in offer and code in offer, offer
    assert "算我一个" in offer and "单独报" in offer
    join = WeChatServer.new_msg_id()
    joined = (await wechat.text("o_second", "算我一个", msg_id=join)).text
    assert code in joined and "共2户" in joined, joined
    again = (await wechat.text("o_second", "算我一个", msg_id=join)).text  # WeChat's retry
    assert again == joined

    assert [o.code for o in await orders_of(wechat)] == [code]
    assert await followers_of(wechat, code) == [("o_second", followers.FOLLOWING)]
    unit = await outbox_texts(wechat, "property")
    assert count(unit, "同一问题", code, "共2户反映") == 1, unit
    for user, role, unit_key in (("staff1", "staff", None), ("property1", "unit", "property")):
        await add_user(wechat, user, role, unit_key)
        browser = await login(wechat, user)
        assert "共2户反映" in await (await browser.get(f"/console/orders/{code}")).text()
        await browser.close()

    # The unit works the one order by chat; a retried 完成 changes nothing.
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    assert "已接单" in await say(wechat, "o_worker", f"接单 {code}")
    assert "已开始" in await say(wechat, "o_worker", f"开始 {code}")
    done = WeChatServer.new_msg_id()
    assert "已完成" in (await wechat.text("o_worker", f"完成 {code} 换了阀门", msg_id=done)).text
    await wechat.text("o_worker", f"完成 {code} 换了阀门", msg_id=done)

    for openid in ("o_first", "o_second"):
        told = await outbox_texts(wechat, openid)
        assert count(told, code, "已被阳光物业接单") == 1, (openid, told)
        assert count(told, code, "开始为您服务") == 1, (openid, told)
        assert count(told, code, "办好了", "换了阀门") == 1, (openid, told)
    [second_done] = [t for t in await outbox_texts(wechat, "o_second") if "办好了" in t]
    assert "您反映的问题" in second_done and "转人工" in second_done
    [order] = await orders_of(wechat)
    assert order.status == "completed"


async def test_another_building_and_reporting_alone_make_their_own_orders(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    first = await place(wechat, "o_first", "楼道的水管漏水了", "1栋")
    other = await place(wechat, "o_far", "水管漏水了", "7栋")  # no offer: another building
    eleven = await place(wechat, "o_eleven", "水管漏水了", "11栋")  # 11栋 is not 1栋
    # The reporter's own second report is not offered their own order.
    assert "算我一个" not in await report(wechat, "o_first", "水管又漏水了", "1栋")
    await say(wechat, "o_first", "取消")

    offer = await report(wechat, "o_alone", "水管漏水了", "1号楼")
    assert first in offer and "算我一个" in offer
    assert "手机号" in await say(wechat, "o_alone", "单独报")
    found = CODE.search(await say(wechat, "o_alone", "13899990001", "确认"))
    assert found is not None and found[1] not in (first, other, eleven)
    assert len(await orders_of(wechat)) == 4
    assert await followers_of(wechat, first) == []


async def test_a_follower_leaves_only_their_interest_and_a_reporter_hands_over(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_first", "楼道的水管漏水了", "1栋")
    for openid in ("o_second", "o_third"):
        await report(wechat, openid, "水管漏水", "1栋")
        assert code in await say(wechat, openid, "算我一个")

    assert "不再发给您" in await say(wechat, "o_second", f"取消订单 {code}")
    [order] = await orders_of(wechat)
    assert order.status == "dispatched"  # the order goes on
    # The reporter calls it off: it is the third's now, still open.
    assert "其他住户" in await say(wechat, "o_first", f"取消订单 {code}")
    [order] = await orders_of(wechat)
    assert order.status == "dispatched"
    assert await followers_of(wechat, code) == [
        ("o_second", followers.LEFT),
        ("o_first", followers.LEFT),
    ]
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        owner = await session.get(models.Resident, order.resident_id)
    assert owner is not None and owner.openid == "o_third"
    assert "已经取消" in await say(wechat, "o_third", f"取消订单 {code}")
    [order] = await orders_of(wechat)
    assert order.status == "cancelled"
    assert not any("已取消" in t for t in await outbox_texts(wechat, "o_second"))
