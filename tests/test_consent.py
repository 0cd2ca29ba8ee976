"""Notice and consent (个人信息保护法) through the real webhook: asked once with the
first question for a phone or an address, recorded with the notice's version, asked
again under a new notice or after 撤回同意; a resident who says no still books what
needs neither; 我的信息 shows what is kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update

from bot import keys
from bot.privacy.consent import NOTICE_VERSION
from storage import models
from storage.order_status import OrderStatus
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import CODE, move, orders_of, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

NOTICE = "温馨提示"

CALLIGRAPHY = {
    "id": "calligraphy",
    "title": "书法兴趣课程",
    "unit": "community",
    "category": "为老服务",
    "keywords": ["书法课", "学书法", "练毛笔字"],
    "description": "社区老年书法课，报个名就行。",
    "form": [{"id": "name", "kind": "name"}],
}


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """The ordering catalog and a course whose form asks only a name (no phone)."""
    path = write_catalog(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["items"].append(CALLIGRAPHY)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def answers_of(wechat: WeChatServer) -> list[tuple[str, str, int]]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(select(models.Consent).order_by(models.Consent.id))
        return [(r.action, r.method, r.notice_version) for r in rows]


async def test_consent_is_asked_once_with_the_first_address_question_and_recorded_once(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    first = await say(wechat, "o_wang", "楼上老往我家滴水")
    assert NOTICE in first and "阳光物业" in first and "哪栋楼" in first
    agreed = wechat.text_xml("o_wang", "同意")
    reply = (await wechat.post(agreed)).text
    assert "已记下您同意" in reply and "哪栋楼" in reply and NOTICE not in reply
    await wechat.post(agreed)  # WeChat retries the same message
    phone = await say(wechat, "o_wang", "3栋2单元")
    assert "手机号码" in phone and NOTICE not in phone
    assert CODE.search(await say(wechat, "o_wang", "13812345678", "确认"))
    # A second order is not asked again, and the phone is remembered.
    again = await say(wechat, "o_wang", "家里跳闸了")
    assert NOTICE not in again
    assert "138****5678" in await say(wechat, "o_wang", "3栋2单元")
    assert await answers_of(wechat) == [("given", "said", NOTICE_VERSION)]


async def test_answering_after_the_notice_is_consent_and_a_new_notice_asks_again(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_li", "楼上老往我家滴水", "3栋2单元", "13812345678", "确认")
    assert await answers_of(wechat) == [("given", "answered", NOTICE_VERSION)]
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(update(models.Consent).values(notice_version=NOTICE_VERSION - 1))
    # The notice changed since: asked again, and the phone kept is not used unasked.
    assert NOTICE in await say(wechat, "o_li", "家里跳闸了")
    assert "手机号码" in await say(wechat, "o_li", "3栋2单元")


async def test_a_resident_who_refuses_consent_still_books_a_course(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    assert NOTICE in await say(wechat, "o_zhao", "楼上老往我家滴水")
    refused = await say(wechat, "o_zhao", "不同意")
    assert "没关系" in refused and "0773-2800123" in refused and "代办" in refused
    assert not await orders_of(wechat)

    course = await say(wechat, "o_zhao", "我想报名书法课")
    assert "书法兴趣课程" in course and NOTICE not in course
    summary = await say(wechat, "o_zhao", "赵阿姨")
    assert "请核对" in summary and NOTICE not in summary
    assert CODE.search(await say(wechat, "o_zhao", "确认"))
    [order] = await orders_of(wechat)
    assert order.answers["name"] == "赵阿姨"
    assert await answers_of(wechat) == [("refused", "said", NOTICE_VERSION)]


async def test_my_information_and_withdrawing_consent(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    done = await say(wechat, "o_sun", "楼上老往我家滴水", "3栋2单元", "13812345678", "确认")
    code = CODE.search(done)
    assert code is not None
    mine = await say(wechat, "o_sun", "我的信息")
    assert "138****5678" in mine and "13812345678" not in mine
    assert "3栋2单元" in mine and code[1] in mine and "您同意了" in mine

    assert "已经撤回" in await say(wechat, "o_sun", "撤回同意")
    mine = await say(wechat, "o_sun", "我的信息")
    assert "电话：没有" in mine and "您撤回了" in mine
    # A new order asks again, and no phone of theirs is used without it.
    assert NOTICE in await say(wechat, "o_sun", "家里跳闸了")
    assert "手机号码" in await say(wechat, "o_sun", "3栋2单元")
    assert [a for a, _, _ in await answers_of(wechat)] == ["given", "withdrawn", "given"]


async def test_a_photo_sent_while_booking_waits_for_consent(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_lin", "我想报名书法课")
    photo = wechat.xml(
        "o_lin", "image", PicUrl="http://x/a.jpg", MediaId="m1", MsgId=wechat.new_msg_id()
    )
    assert "不同意" in (await wechat.post(photo)).text
    assert "照片和位置就不保存" in await say(wechat, "o_lin", "不同意")
    assert CODE.search(await say(wechat, "o_lin", "林阿姨", "确认"))
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        assert not (await session.scalars(select(models.OrderAttachment))).all()


async def test_staff_read_a_resident_their_information_and_record_consent_in_person(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_he", "楼上老往我家滴水", "3栋2单元", "13899990000", "赵阿姨", "确认")
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console/privacy?q=13899990000")).text()
    assert "电话：138****0000" in page and "3栋2单元" in page
    assert "3栋2单元" in page and "居民撤回同意" in page
    token = await csrf_of(staff, "/console/privacy")
    [resident_id] = {int(i) for i in re.findall(r"/console/privacy/(\d+)", page)}
    for action in ("withdrawn", "withdrawn", "given"):  # a double click records once
        reply = await staff.post(
            f"/console/privacy/{resident_id}",
            data={"csrf": token, "action": action, "q": "13899990000"},
        )
        assert reply.status == 200
    await staff.close()
    await wechat.client.app[keys.ACCESS_LOG].drained()  # views are recorded behind the page
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = (await session.scalars(select(models.Consent).order_by(models.Consent.id))).all()
        resident = await session.get(models.Resident, resident_id)
        audited = (await session.scalars(select(models.AuditEntry.action))).all()
    assert [(r.action, r.method, r.actor) for r in rows] == [
        ("given", "answered", None),
        ("withdrawn", "in_person", "staff1"),
        ("given", "in_person", "staff1"),
    ]
    assert resident is not None and resident.phone is None
    assert {"privacy_view", "consent_withdrawn", "consent_in_person"} <= set(audited)


PHONE, ADDRESS = "13812345678", "3栋2单元"


async def send_photo(wechat: WeChatServer, openid: str) -> str:
    xml = wechat.xml(
        openid, "image", PicUrl="http://x/a.jpg", MediaId="m1", MsgId=wechat.new_msg_id()
    )
    return (await wechat.post(xml)).text


async def photos_kept(wechat: WeChatServer) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return len((await session.scalars(select(models.OrderAttachment))).all())


async def test_withdrawing_mid_form_drops_the_phone_given_and_asks_again_with_the_notice(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    assert "请核对" in await say(wechat, "o_li", "楼上老往我家滴水", "同意", ADDRESS, PHONE)
    again = await say(wechat, "o_li", "撤回同意")
    assert "已经撤回" in again and NOTICE in again and "哪栋楼" in again
    assert "请核对" not in await say(wechat, "o_li", "确认")  # nothing placed with the phone
    assert not await orders_of(wechat)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        assert (await session.scalar(select(models.Resident.phone))) is None


async def test_the_photo_notice_tells_of_phone_and_address_too_and_answering_is_consent(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_he", "楼道杂物")
    told = await send_photo(wechat, "o_he")
    assert NOTICE in told and "电话" in told and "地址" in told
    assert "6个月" in told and "3个月" in told
    assert "手机号码" in await say(wechat, "o_he", "1")
    await say(wechat, "o_he", PHONE)
    assert await answers_of(wechat) == [("given", "answered", NOTICE_VERSION)]


async def test_photos_waiting_for_consent_are_asked_about_at_the_summary(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_lin", "我想报名书法课")
    await send_photo(wechat, "o_lin")
    summary = await say(wechat, "o_lin", "林阿姨")
    assert "请核对" in summary and "照片要您同意" in summary
    assert "没有保存" in await say(wechat, "o_lin", "确认")
    assert await photos_kept(wechat) == 0
    # Sent while still choosing: told it is asked first, then asked at the summary.
    await say(wechat, "o_zhou", "菜单")
    assert "先问您" in await send_photo(wechat, "o_zhou")
    summary = await say(wechat, "o_zhou", "为老服务", "书法", "周阿姨")
    assert NOTICE in summary and "照片要您同意" in summary
    assert "请核对" in await say(wechat, "o_zhou", "同意")
    assert CODE.search(await say(wechat, "o_zhou", "确认"))
    assert await photos_kept(wechat) == 1


async def test_refusing_photos_still_books_a_service_that_needs_a_phone(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_qi", "楼道杂物")
    await send_photo(wechat, "o_qi")
    assert "照片和位置就不保存" in await say(wechat, "o_qi", "不同意")
    asked = await say(wechat, "o_qi", "1")
    assert "预约不了" not in asked and NOTICE in asked and "手机号码" in asked
    assert CODE.search(await say(wechat, "o_qi", PHONE, "确认"))
    [order] = await orders_of(wechat)
    assert order.answers["phone"] == PHONE and await photos_kept(wechat) == 0


async def test_agreeing_where_no_notice_was_shown_records_nothing(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    assert "会先告诉您" in await say(wechat, "o_ye", "同意")
    assert await answers_of(wechat) == []


async def test_keeping_ones_information_mid_form_goes_on_with_the_form(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_ma", "楼上老往我家滴水", "同意", ADDRESS)
    await say(wechat, "o_ma", "删除我的信息")
    assert "接着" in await say(wechat, "o_ma", "算了")
    assert "请核对" in await say(wechat, "o_ma", PHONE)
    await say(wechat, "o_ma", "删除我的信息")
    assert "请核对" in await say(wechat, "o_ma", "我要改一下")  # any other message: the form


async def test_my_information_lists_done_orders_still_holding_contact_details_and_photos(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_wu", "楼上老往我家滴水", "同意", ADDRESS)
    await send_photo(wechat, "o_wu")
    done = CODE.search(await say(wechat, "o_wu", PHONE, "确认"))
    assert done is not None
    await move(wechat, done[1], OrderStatus.CLOSED)
    mine = await say(wechat, "o_wu", "我的信息")
    assert f"办完的订单 {done[1]}" in mine and "保存到" in mine
    assert "照片：1张" in mine and "138****5678" in mine and PHONE not in mine
