"""Units by chat, through the real webhook: binding, 待办, 接单 → 开始 → 完成, the
honest outcomes (办不了, 不归我管, 退单 until staff decide), and refusals for unbound
users, other units' orders and illegal moves."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from sqlalchemy import select

from bot import keys
from bot.cli import main
from bot.orders import domain
from storage import models
from storage.order_status import OrderStatus
from storage.repositories import units as repo
from storage.repositories.evaluation import Rules, unit_months
from tests.ordering_catalog import write_catalog
from tests.test_ordering import CODE, move, orders_of, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

INVITE = re.compile(r"绑定 ([2-9A-Z]{10})")


async def invite(db_url: str, unit: str) -> str:
    """``order-menu units invite UNIT``, as staff run it (in a thread: it has its own loop)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["units", "invite", unit], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    found = INVITE.search(result.output)
    assert found is not None
    return found[1]


async def place(wechat: WeChatServer, openid: str) -> str:
    """A burst pipe in 1栋, reported on its own: when another resident's order for 1栋
    is open, the offer to join it (我也遇到) is declined."""
    if "算我一个" in await say(wechat, openid, "水管爆了", "1栋"):
        await say(wechat, openid, "单独报")
    await say(wechat, openid, "13899990000")
    found = CODE.search(await say(wechat, openid, "确认"))
    assert found is not None
    return found[1]


async def outbox_texts(wechat: WeChatServer, target: str) -> list[str]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(models.OutboxMessage)
            .where(models.OutboxMessage.target == target)
            .order_by(models.OutboxMessage.id)
        )
        return [str(r.payload.get("text", "")) for r in rows]


async def test_binding_with_a_one_time_code(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await invite(db_url, "property")
    assert "绑定成功" in await say(wechat, "o_worker", f"绑定 {code}")
    assert "绑定成功" in await say(wechat, "o_worker", f"绑定 {code.lower()}")  # same person again
    assert "用过了" in await say(wechat, "o_someone", f"绑定 {code}")
    assert "不对" in await say(wechat, "o_someone", "绑定 ABCDEFGHJK")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        unit = await repo.unit_row(session, "testville", "law")
        assert unit is not None
        old, _ = await repo.create_invite(
            session, unit, ttl=dt.timedelta(hours=-1), created_by="test"
        )
    assert "过期" in await say(wechat, "o_someone", f"绑定 {old}")
    bad = await asyncio.to_thread(
        CliRunner().invoke, main, ["units", "invite", "nobody"], env={"DATABASE_URL": db_url}
    )
    assert bad.exit_code != 0 and "no unit 'nobody'" in bad.output


async def test_a_unit_works_an_order_and_the_resident_hears_of_it(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_resident")
    assert any(code in text and "新订单" in text for text in await outbox_texts(wechat, "property"))

    # Not bound yet: refused.
    assert "先发“绑定" in await say(wechat, "o_worker", f"接单 {code}")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    assert code in await say(wechat, "o_worker", "待办")

    accepted = await say(wechat, "o_worker", f"接单 {code.lower()}")
    assert "已接单" in accepted and "13899990000" in accepted and "1栋" in accepted
    assert "不能接单" in await say(wechat, "o_worker", f"接单 {code}")
    assert "不能完成" in await say(wechat, "o_worker", f"完成 {code} 修好了")  # not started
    assert "已开始" in await say(wechat, "o_worker", f"开始 {code}")
    assert "已完成" in await say(wechat, "o_worker", f"完成 {code} 换了新水管")

    told = await outbox_texts(wechat, "o_resident")
    assert any("已被阳光物业接单" in t for t in told)
    assert any("开始为您服务" in t for t in told)
    assert any("办好了" in t and "换了新水管" in t and "没解决" in t for t in told)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
        assert order is not None
        events = (
            await session.scalars(
                select(models.OrderEvent.actor).where(models.OrderEvent.order_id == order.id)
            )
        ).all()
    assert order.status == "completed" and events.count("unit:o_worker") == 3


async def test_units_cannot_touch_other_units_orders(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_resident")
    await say(wechat, "o_lawyer", f"绑定 {await invite(db_url, 'law')}")
    assert "不是派给贵单位" in await say(wechat, "o_lawyer", f"接单 {code}")
    assert "没有找到订单" in await say(wechat, "o_lawyer", "接单 ZZZZZZ")
    assert "现在没有待办" in await say(wechat, "o_lawyer", "待办")


async def test_returning_needs_a_reason_and_waits_for_staff(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """退单 (or 退回) asks staff: the order stays the unit's until they approve it."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_resident")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    assert "说明原因" in await say(wechat, "o_worker", f"退单 {code}")
    asked = await say(wechat, "o_worker", f"退回 {code} 这是自来水公司管的")
    assert "退单申请" in asked and "仍由贵单位负责" in asked
    staff = await outbox_texts(wechat, "community")
    assert [t for t in staff if "退单申请" in t and "自来水公司" in t and code in t]
    assert not any("重新安排" in t for t in await outbox_texts(wechat, "o_resident"))
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.RETURN_ASKED
    assert "不能接单" in await say(wechat, "o_worker", f"接单 {code}")  # staff decide first


async def test_a_second_acceptance_after_a_return_is_told_to_the_resident_again(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """接单 → 退单 → approved → re-dispatch → 接单: the resident hears of both
    acceptances (keyed by status and order code, the second message used to be dropped)."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_twice")
    await say(wechat, "o_fixer", f"绑定 {await invite(db_url, 'property')}")
    assert "已接单" in await say(wechat, "o_fixer", f"接单 {code}")
    assert "退单申请" in await say(wechat, "o_fixer", f"退单 {code} 配件没到，先退回")
    await move(wechat, code, OrderStatus.RETURNED)
    await move(wechat, code, OrderStatus.DISPATCHED)
    assert "已接单" in await say(wechat, "o_fixer", f"接单 {code}")
    accepted = [t for t in await outbox_texts(wechat, "o_twice") if "接单" in t]
    assert len(accepted) == 2, accepted


async def test_not_possible_needs_a_reason_ends_the_order_and_tells_the_resident_kindly(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_sad")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    assert "说明原因" in await say(wechat, "o_worker", f"办不了 {code}")
    assert "已记为办不了" in await say(wechat, "o_worker", f"办不了 {code} 是楼体裂缝，要住建鉴定")
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.NOT_POSSIBLE
    [told] = [t for t in await outbox_texts(wechat, "o_sad") if "没能办成" in t]
    assert "很抱歉" in told and "住建鉴定" in told and "转人工" in told
    assert any("办不了" in t and code in t for t in await outbox_texts(wechat, "community"))
    assert "不能接单" in await say(wechat, "o_worker", f"接单 {code}")  # it has ended


async def test_not_ours_goes_back_to_staff_and_is_not_counted_against_the_unit(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_where")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    reply = await say(wechat, "o_worker", f"不归我管 {code} 这是自来水公司的主管道")
    assert "交回社区改派" in reply and "不会算" in reply
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.MISROUTED
    assert any("不归他们管" in t and code in t for t in await outbox_texts(wechat, "community"))
    assert any("更合适的单位" in t for t in await outbox_texts(wechat, "o_where"))
    app = wechat.client.app
    async with app[keys.SESSIONMAKER]() as session:
        months = await unit_months(
            session, "testville", ZoneInfo("Asia/Shanghai"), Rules(now=dt.datetime.now(dt.UTC))
        )
    assert [m for m in months if m.unit == "property"] == []  # not the unit's to count
    # Staff re-dispatch it: the new unit is told as of a new order.
    async with app[keys.SESSIONMAKER].begin() as session:
        law = await repo.unit_row(session, "testville", "law")
        row = await session.scalar(select(models.Order).where(models.Order.code == code))
        assert law is not None and row is not None
        await domain.transition(
            session,
            row,
            OrderStatus.DISPATCHED,
            actor="staff:t",
            catalog=app[keys.TENANTS].default.catalog.current,
            policy=app[keys.POLICY],
            now=app[keys.CLOCK].now(),
            unit=law,
        )
    assert any("新订单" in t and code in t for t in await outbox_texts(wechat, "law"))
