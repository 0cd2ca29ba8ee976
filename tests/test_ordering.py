"""群众点单 end to end, through the real webhook: from a need to a placed order, and
the resident's commands afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import keys
from bot.orders import domain
from catalog.loader import load_catalog
from handlers import EXPIRED_NOTICE
from storage import models
from storage.order_status import OrderStatus
from storage.repositories.catalog import import_catalog
from tests.ordering_catalog import without_unit, write_catalog
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

CODE = re.compile(r"订单号：([2-9A-Z]{6})")


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    return write_catalog(tmp_path)


async def bot(aiohttp_client: Client, db_url: str, catalog_file: Path) -> WeChatServer:
    return await start(aiohttp_client, db_url, catalog_path=catalog_file)


async def orders_of(wechat: WeChatServer) -> list[models.Order]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return list((await session.scalars(select(models.Order).order_by(models.Order.id))).all())


async def say(wechat: WeChatServer, openid: str, *lines: str) -> str:
    reply = ""
    for line in lines:
        reply = (await wechat.text(openid, line)).text
    return reply


async def move(wechat: WeChatServer, code: str, to: OrderStatus, actor: str = "staff:t") -> None:
    """Staff move an order, as the console does: through the order domain."""
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
        assert order is not None
        await domain.transition(
            session,
            order,
            to,
            actor=actor,
            catalog=app[keys.TENANTS].default.catalog.current,
            policy=app[keys.POLICY],
            now=app[keys.CLOCK].now(),
        )


async def start_order(wechat: WeChatServer, openid: str, need: str) -> str:
    """Send a need; when the bot asks whether it is the one service it guessed, say yes."""
    reply = await say(wechat, openid, need)
    if "是不是这一项" in reply:
        reply = await say(wechat, openid, "是")
    assert "帮您预约" in reply, reply
    return reply


async def test_a_need_becomes_an_order_in_a_few_turns(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    first = await say(wechat, "o_wang", "楼上老往我家滴水")
    assert "水电维修" in first and "阳光物业" in first and "哪栋楼" in first
    assert "手机号码" in await say(wechat, "o_wang", "3栋2单元")
    summary = await say(wechat, "o_wang", "13812345678")
    assert "138****5678" in summary and "3栋2单元" in summary and "确认" in summary
    done = await say(wechat, "o_wang", "确认")
    code = CODE.search(done)
    assert code is not None and "我的订单" in done

    [order] = await orders_of(wechat)
    assert order.code == code[1] and order.status == OrderStatus.DISPATCHED
    assert order.description == "楼上老往我家滴水" and order.grid_key == "g1"
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        events = (
            await session.scalars(
                select(models.OrderEvent).where(models.OrderEvent.order_id == order.id)
            )
        ).all()
        resident = await session.get(models.Resident, order.resident_id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "submitted"),
        ("submitted", "dispatched"),
    ]
    assert resident is not None and resident.phone == "13812345678"

    # The phone is remembered: the next order does not ask for it again.
    again = await say(wechat, "o_wang", "家里跳闸了", "3栋2单元")
    assert "请核对" in again and "138****5678" in again


async def test_choosing_among_likely_services_by_number(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    matcher = wechat.client.app[keys.TENANTS].default.catalog.matcher
    need = "想听讲座"
    assert matcher.match(need).decision == "ambiguous"
    offered = await say(wechat, "o_li", need)
    assert "1. " in offered and "2. " in offered
    options = [line for line in offered.splitlines() if line[:1].isdigit()]
    second_title = options[1].split(". ", 1)[1].split("（")[0]
    picked = await say(wechat, "o_li", "第二个")
    assert f"「{second_title}」" in picked


async def test_a_need_nothing_offers_is_kept_and_the_menu_is_offered(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    reply = await say(wechat, "o_zhao", "想学跳广场舞，社区能不能组织一下")
    assert "记下了" in reply and "1. 物业服务" in reply
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        needs = (await session.scalars(select(models.UnmetNeed))).all()
    assert [n.text for n in needs] == ["想学跳广场舞，社区能不能组织一下"]
    items = await say(wechat, "o_zhao", "１")  # full-width digit
    assert "水电维修" in items and "公共设施报修" in items
    assert "「公共设施报修」" in await say(wechat, "o_zhao", "二")


async def test_the_menu_path_and_the_menu_button(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    by_word = await say(wechat, "o_qian", "菜单")
    by_button = (await wechat.event("o_sun", "CLICK", key="MENU_SERVICES")).text
    assert by_word == by_button and "健康医疗" in by_word


async def test_an_overlong_name_is_asked_again_not_refused_by_the_database(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    """The residents table keeps 100 characters of a name: a longer answer is asked
    again politely (on PostgreSQL it used to fail every retry of 确认)."""
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    reply = await start_order(wechat, "o_long", "帮我妈申请高龄津贴")
    assert "称呼" in reply, reply
    again = await say(wechat, "o_long", "王" * 150)
    assert "50字以内" in again
    reply = await say(wechat, "o_long", "王阿姨")
    for _ in range(4):  # the remaining questions (address, phone …), then confirm
        if "请核对" in reply:
            break
        answer = "3栋2单元" if "哪栋楼" in reply else "13812345678"
        reply = await say(wechat, "o_long", answer)
    assert "王阿姨" in reply, reply
    assert CODE.search(await say(wechat, "o_long", "确认"))


async def test_a_wrong_answer_is_asked_again_with_an_example(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_wu", "水龙头坏了一直漏水", "8栋")
    # Each wrong answer is told what is wrong with it, and the third offers a way out.
    assert "5位" in await say(wechat, "o_wu", "12345")
    assert "座机" in await say(wechat, "o_wu", "0773-2800001")
    third = await say(wechat, "o_wu", "我不知道")
    assert "13812345678" in third and "转人工" in third
    assert "请核对" in await say(wechat, "o_wu", "我的电话是 139 0000 1111")
    assert not await orders_of(wechat)


async def test_choice_questions_show_their_options(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    asked = await say(wechat, "o_choice", "楼道杂物太多了")
    assert "堆的是什么" in asked and "1. 纸箱" in asked and "3. 电动车" in asked
    assert "3. 电动车" in await say(wechat, "o_choice", "冰箱")  # not an option: asked again
    assert "手机号码" in await say(wechat, "o_choice", "旧家具")
    assert "堆的是什么：旧家具" in await say(wechat, "o_choice", "13811110000")


async def test_slots_people_and_the_slot_running_full(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, write_catalog(tmp_path, capacity=3))
    slots = await say(wechat, "o_zhou", "我想报名健康讲座")
    assert "还剩3个名额" in slots and "1. " in slots and "2. " in slots
    assert "几位" in await say(wechat, "o_zhou", "1")
    assert "1到10位" in await say(wechat, "o_zhou", "二十个人")
    await say(wechat, "o_zhou", "两个人", "13700001111")
    assert CODE.search(await say(wechat, "o_zhou", "确认"))

    # Another resident wants 2 places; one is left.
    await say(wechat, "o_feng", "健康讲座", "1", "两位", "13700002222")
    full = await say(wechat, "o_feng", "确认")
    assert "只剩1个名额" in full and "候补" in full
    waiting = await say(wechat, "o_feng", "候补")
    assert "候补" in waiting
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        entries = (await session.scalars(select(models.WaitlistEntry))).all()
        first = await session.scalar(select(models.ItemSlot).where(models.ItemSlot.key == "first"))
    assert len(entries) == 1 and first is not None and first.booked == 2


async def test_leaving_mid_form_and_the_timeout(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_chen", "电梯坏了")
    assert "先不办了" in await say(wechat, "o_chen", "算了")
    # No longer an answer to a question: not understood, and not kept as a need.
    assert "没太明白" in await say(wechat, "o_chen", "3栋")

    await say(wechat, "o_chen", "电梯坏了")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:  # 31 minutes pass
        await session.execute(
            update(models.ConversationState).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            )
        )
    late = await say(wechat, "o_chen", "3栋")
    assert late.startswith(EXPIRED_NOTICE)
    assert not await orders_of(wechat)


async def test_my_orders_cancelling_and_rating(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "还没有订单" in await say(wechat, "o_he", "我的订单")
    await start_order(wechat, "o_he", "电梯坏了")
    await say(wechat, "o_he", "2栋", "13811112222")
    code = CODE.search(await say(wechat, "o_he", "确认"))[1]  # type: ignore[index]
    await say(wechat, "o_he", "家里停电了", "2栋")
    second = CODE.search(await say(wechat, "o_he", "确认"))[1]  # type: ignore[index]

    listing = await say(wechat, "o_he", "我的订单")
    assert code in listing and second in listing and "已派单" in listing

    assert "没有找到" in await say(wechat, "o_he", "取消订单 ZZZZZZ")
    assert "没有找到" in await say(wechat, "o_other", f"取消订单 {code}")  # not theirs
    assert "已经取消" in await say(wechat, "o_he", f"取消订单 {code.lower()}")
    assert "已取消" in await say(wechat, "o_he", "我的订单")

    # Rating waits for the unit to finish; then it works once.
    assert "办完以后" in await say(wechat, "o_he", f"评价 {second} 5 很好")
    for status in (OrderStatus.ACCEPTED, OrderStatus.IN_SERVICE, OrderStatus.COMPLETED):
        await move(wechat, second, status, actor="unit:property")
    assert "谢谢您的评价（5分）" in await say(wechat, "o_he", f"评价 {second} 五星 师傅很耐心")
    assert "已评价" in await say(wechat, "o_he", f"评价 {second} 3")
    rated = await stored_order(wechat, second)
    assert rated.rating == 5 and rated.rating_comment == "师傅很耐心"
    assert "不能在这里取消" in await say(wechat, "o_he", f"取消订单 {second}")


async def stored_order(wechat: WeChatServer, code: str) -> models.Order:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
    assert order is not None
    return order


async def test_ordering_by_voice(db_url: str, aiohttp_client: Client, catalog_file: Path) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)

    async def speak(words: str) -> str:
        xml = wechat.xml(
            "o_voice",
            "voice",
            MediaId="m",
            Format="amr",
            Recognition=words,
            MsgId=wechat.new_msg_id(),
        )
        return (await wechat.post(xml)).text

    assert "水电维修" in await speak("我家水管漏水了。")
    await speak("七栋三单元。")
    await speak("13812345678。")
    assert CODE.search(await speak("确认。"))
    [order] = await orders_of(wechat)
    assert order.grid_key == "g2"


async def test_a_retried_confirmation_places_one_order(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_xu", "水管爆了", "1栋", "13899990000")
    confirm = wechat.text_xml("o_xu", "确认")
    replies = await asyncio.gather(*(wechat.post(confirm) for _ in range(3)))
    again = await wechat.post(confirm)
    codes = {CODE.search(r.text)[1] for r in [*replies, again]}  # type: ignore[index]
    assert len(codes) == 1
    assert len(await orders_of(wechat)) == 1


async def test_photos_and_places_go_with_the_report(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    asked = await say(wechat, "o_lin", "路灯坏了")
    assert "公共设施报修" in asked
    photo = wechat.xml(
        "o_lin", "image", PicUrl="http://x/lamp.jpg", MediaId="m1", MsgId=wechat.new_msg_id()
    )
    assert "一起交给" in (await wechat.post(photo)).text
    if "是不是这一项" in asked:
        await say(wechat, "o_lin", "是")
    await say(wechat, "o_lin", "3栋门口", "13855556666", "确认")
    place = wechat.xml(
        "o_lin",
        "location",
        Location_X="25.27",
        Location_Y="110.29",
        Scale="15",
        Label="解东路3号",
        MsgId=wechat.new_msg_id(),
    )
    assert "已经附到订单" in (await wechat.post(place)).text
    [order] = await orders_of(wechat)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        attachments = (
            await session.scalars(
                select(models.OrderAttachment).where(models.OrderAttachment.order_id == order.id)
            )
        ).all()
    assert sorted(a.kind for a in attachments) == ["image", "location"]


async def test_asking_for_a_person(db_url: str, aiohttp_client: Client, catalog_file: Path) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_ma", "电梯坏了")
    reply = await say(wechat, "o_ma", "转人工")
    assert "工作人员" in reply
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        handoffs = (await session.scalars(select(models.Handoff))).all()
    assert [(h.openid, h.status) for h in handoffs] == [("o_ma", "open")]
    # The form was left: what the resident writes next goes to staff, in the thread.
    assert "转给社区工作人员" in await say(wechat, "o_ma", "3栋")
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        thread = (await session.scalars(select(models.HandoffMessage.text))).all()
        assert not (await session.scalars(select(models.Order))).all()
    assert list(thread) == ["3栋"]


async def test_the_building_given_on_an_order_places_the_resident_in_a_grid(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_grid", "水管爆了", "8栋2单元", "13899990001", "确认")
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        resident = await session.scalar(
            select(models.Resident).where(models.Resident.openid == "o_grid")
        )
    assert resident is not None and resident.grid_key == "g2" and resident.building == "8栋2单元"


async def test_a_service_withdrawn_mid_conversation_is_explained_not_apologised_for(
    db_url: str, aiohttp_client: Client, catalog_file: Path, tmp_path: Path
) -> None:
    """Staff import a catalog without the service a resident is booking: the next answer
    gets a word on it and is read afresh (it used to get 「系统出了点小问题」 until the
    conversation timed out)."""
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_mid", "想找律师咨询欠薪的事")
    changed = await asyncio.to_thread(
        without_unit, catalog_file, "law", tmp_path / "without-law.yaml"
    )
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        await import_catalog(session, load_catalog(changed), source="test")
    await app[keys.SCHEDULER].run_now("catalog-refresh")
    reply = await say(wechat, "o_mid", "1栋")
    assert "调整了" in reply and "小问题" not in reply
    assert "菜单" in await say(wechat, "o_mid", "帮助")  # no longer stuck in the form


async def test_orders_of_a_unit_retired_from_the_catalog_can_still_be_cancelled_and_closed(
    db_url: str, aiohttp_client: Client, catalog_file: Path, tmp_path: Path
) -> None:
    """The unit left the catalog with orders open: the resident's 取消 and staff's
    关闭 still go through (they used to fail on the unit's missing channels, and the
    resident was told to try again, forever)."""
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_law", "想找律师咨询欠薪的事", "1栋", "13899990001")
    first = CODE.search(await say(wechat, "o_law", "确认"))
    await say(wechat, "o_law2", "想找律师咨询欠薪的事", "2栋", "13899990002")
    second = CODE.search(await say(wechat, "o_law2", "确认"))
    assert first and second
    changed = await asyncio.to_thread(
        without_unit, catalog_file, "law", tmp_path / "without-law.yaml"
    )
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        await import_catalog(session, load_catalog(changed), source="test")
    await app[keys.SCHEDULER].run_now("catalog-refresh")

    reply = await say(wechat, "o_law", f"取消订单 {first[1]}")
    assert "取消" in reply and "小问题" not in reply
    await move(wechat, second[1], OrderStatus.CLOSED)
    async with app[keys.SESSIONMAKER]() as session:
        statuses = dict(
            (await session.execute(select(models.Order.code, models.Order.status))).all()
        )
    assert statuses[first[1]] == "cancelled" and statuses[second[1]] == "closed"
