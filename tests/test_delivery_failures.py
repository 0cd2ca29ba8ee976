"""Notifications that could not be delivered: marked on the console with why, sent
again when the cause is fixed (a member binds, a setting appears, staff press
重新发送), and a daily digest of stuck orders and failed deliveries, sent once.

Everything through the real service: orders placed through /wechat, staff logged in
over HTTP, units bound by chat, messages received by the fake WeChat."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import keys
from storage import models
from tests.fake_clock import SHANGHAI, FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import say
from tests.test_units import invite, place
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()

ROBOT_ENV = "OM_TEST_LAW_ROBOT_URL"
RESEND = re.compile(r'action="(/console/orders/[2-9A-Z]{6}/deliveries/\d+/resend)"')


def wechat_catalog(directory: Path) -> Path:
    """The test catalog, with 阳光物业 told by WeChat (its bound members), the law firm
    by a WeCom robot whose address is an environment variable, and staff (the
    community's own unit) by WeChat."""
    path = write_catalog(directory)
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "{id: property, name: 阳光物业, kind: 企业, channels: [{type: log}]}",
        "{id: property, name: 阳光物业, kind: 企业, channels: [{type: wechat}]}",
    )
    text = text.replace(
        "{id: law, name: 共建律师事务所, kind: 两新组织}",
        "{id: law, name: 共建律师事务所, kind: 两新组织, "
        f"channels: [{{type: wecom_robot, url_env: {ROBOT_ENV}}}]}}",
    )
    text = text.replace(
        "{id: community, name: 测试社区居委会, kind: 社区}",
        "{id: community, name: 测试社区居委会, kind: 社区, channels: [{type: wechat}]}",
    )
    assert text.count("type: wechat") == 2 and ROBOT_ENV in text
    path.write_text(text, encoding="utf-8")
    return path


async def service(
    aiohttp_client: Client,
    db_url: str,
    fake: FakeWeChat,
    catalog: Path,
    clock: FakeClock | None = None,
    **extra: object,
) -> WeChatServer:
    return await start(
        aiohttp_client,
        db_url,
        clock=clock,
        catalog_path=catalog,
        scheduler_interval=60,  # the tests run the jobs themselves
        wechat_app_id=fake.app_id,
        wechat_app_secret=fake.app_secret,
        wechat_api_base=fake.base_url,
        **extra,
    )


async def send_outbox(wechat: WeChatServer) -> None:
    await wechat.client.app[keys.SCHEDULER].run_now("outbox")


async def page(browser: object, path: str) -> str:
    reply = await browser.get(path)  # type: ignore[attr-defined]
    assert reply.status == 200, path
    body = await reply.text()
    # Staff read Chinese: no English word, no key or internal id on the page.
    shown = visible_text(body)
    quoted = set(re.findall(r"(?<![A-Za-z0-9])[2-9A-Z]{6}(?![A-Za-z0-9])", shown))  # order codes
    assert english_words(shown, frozenset(quoted)) == [], shown
    assert "no_member" not in body and "placed:" not in body
    return shown


async def test_a_failed_notification_shows_on_the_console_and_goes_out_when_a_member_binds(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    for openid in ("o_worker", "o_second"):
        fake_wechat.add_user(openid)
    wechat = await service(aiohttp_client, db_url, fake_wechat, wechat_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    code = await place(wechat, "o_res")  # 水电维修, 阳光物业: nobody bound yet
    await send_outbox(wechat)
    assert fake_wechat.sent == []

    staff = await login(wechat, "staff1")
    front = await page(staff, "/console")
    assert "有 1 个订单的通知没有送到" in front and "通知没送到" in front
    assert code in await page(staff, "/console?undelivered=1")
    order_page = await page(staff, f"/console/orders/{code}")
    assert "这个单位还没有人绑定微信" in order_page and "重新发送" in order_page

    # 重新发送 now would only fail again: staff are told what to do instead.
    body = await (await staff.get(f"/console/orders/{code}")).text()
    resend = RESEND.search(body)
    assert resend is not None
    token = await csrf_of(staff, f"/console/orders/{code}")
    early = await staff.post(resend[1], data={"csrf": token}, allow_redirects=False)
    assert early.status == 409 and "请先把邀请码发给单位的联系人" in await early.text()

    # A member binds by chat: in that transaction the notification is put back.
    assert "绑定成功" in await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    for _ in range(2):
        await send_outbox(wechat)
    assert fake_wechat.deliveries() == {"o_worker": 1}
    assert code in fake_wechat.sent[0]["text"]["content"]

    # A second member binding later does not get it again: the unit has it.
    assert "绑定成功" in await say(wechat, "o_second", f"绑定 {await invite(db_url, 'property')}")
    await send_outbox(wechat)
    assert fake_wechat.deliveries() == {"o_worker": 1}

    front = await page(staff, "/console")
    assert "没有送到" not in front and "0 通知没送到" in front  # the count, now nothing
    assert "通知没送到" not in await page(staff, f"/console/orders/{code}")
    await staff.close()


async def test_two_members_binding_at_once_get_it_once_between_them(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    """Both bindings commit; the conditional re-queue lets only one take the row."""
    for openid in ("o_a", "o_b"):
        fake_wechat.add_user(openid)
    wechat = await service(aiohttp_client, db_url, fake_wechat, wechat_catalog(tmp_path))
    code = await place(wechat, "o_res")
    await send_outbox(wechat)
    codes = [await invite(db_url, "property") for _ in range(2)]
    replies = await asyncio.gather(
        say(wechat, "o_a", f"绑定 {codes[0]}"), say(wechat, "o_b", f"绑定 {codes[1]}")
    )
    assert all("绑定成功" in r for r in replies), replies
    for _ in range(2):
        await send_outbox(wechat)
    assert sum(fake_wechat.deliveries().values()) == 1, fake_wechat.sent
    assert code in fake_wechat.sent[0]["text"]["content"]


async def test_a_missing_setting_is_named_and_the_message_goes_once_it_is_set(
    db_url: str,
    aiohttp_client: Client,
    fake_wechat: FakeWeChat,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ROBOT_ENV, raising=False)
    robot_calls: list[dict[str, object]] = []

    from aiohttp import web

    async def robot(request: web.Request) -> web.Response:
        robot_calls.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    robot_app = web.Application()
    robot_app.router.add_post("/robot", robot)
    robot_server = await aiohttp_client(robot_app)

    wechat = await service(aiohttp_client, db_url, fake_wechat, wechat_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    placed = await staff.post(  # 代办: staff order for a resident at the counter
        "/console/proxy",
        data={
            "csrf": await csrf_of(staff, "/console"),
            "item": "legal-consult",
            "name": "张奶奶",
            "phone": "13800001234",
            "consent": "yes",
        },
        allow_redirects=False,
    )
    assert placed.status == 302, await placed.text()
    code = placed.headers["Location"].rsplit("/", 1)[1]
    await send_outbox(wechat)
    assert "单位的企业微信机器人地址没有配置" in await page(staff, f"/console/orders/{code}")

    # Still unset: the check leaves it alone.
    await wechat.client.app[keys.SCHEDULER].run_now("delivery-settings")
    await send_outbox(wechat)
    assert robot_calls == []
    monkeypatch.setenv(ROBOT_ENV, str(robot_server.make_url("/robot")))
    for _ in range(2):
        await wechat.client.app[keys.SCHEDULER].run_now("delivery-settings")
        await send_outbox(wechat)
    assert len(robot_calls) == 1 and code in str(robot_calls[0])
    assert "通知没送到" not in await page(staff, f"/console/orders/{code}")
    await staff.close()


async def test_staff_resend_a_refused_message_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    """WeChat refuses for good (after the attempts); staff press 重新发送 twice (a
    double click): it goes out once."""
    fake_wechat.add_user("o_worker")
    wechat = await service(
        aiohttp_client, db_url, fake_wechat, wechat_catalog(tmp_path), outbox_max_attempts=1
    )
    await add_user(wechat, "staff1", "staff")
    assert "绑定成功" in await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    fake_wechat.fail_next("/cgi-bin/message/custom/send", [-1, -1, -1, -1, -1, -1])
    code = await place(wechat, "o_res")
    await send_outbox(wechat)
    assert fake_wechat.sent == []
    staff = await login(wechat, "staff1")
    shown = await page(staff, f"/console/orders/{code}")
    assert "微信多次没有接收" in shown
    body = await (await staff.get(f"/console/orders/{code}")).text()
    resend = RESEND.search(body)
    assert resend is not None
    token = await csrf_of(staff, f"/console/orders/{code}")
    first, second = await asyncio.gather(
        staff.post(resend[1], data={"csrf": token}, allow_redirects=False),
        staff.post(resend[1], data={"csrf": token}, allow_redirects=False),
    )
    assert sorted([first.status, second.status]) == [302, 409]
    assert "正在重新发送" in await page(staff, f"/console/orders/{code}")
    for _ in range(2):
        await send_outbox(wechat)
    assert fake_wechat.deliveries() == {"o_worker": 1}
    assert "通知没送到" not in await page(staff, f"/console/orders/{code}")
    await staff.close()


def digest_clock(hour: int, minute: int = 0, days_ahead: int = 2) -> FakeClock:
    """Local time ``days_ahead`` days from today (orders placed now are overdue then)."""
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=days_ahead)
    return FakeClock(dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI))


async def test_the_daily_digest_goes_to_staff_once_from_two_processes(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    for openid in ("o_staff", "o_res"):
        fake_wechat.add_user(openid)
    catalog = wechat_catalog(tmp_path)
    clock = digest_clock(8, 30)
    one = await service(aiohttp_client, db_url, fake_wechat, catalog, clock, digest_time="09:00")
    two = await service(aiohttp_client, db_url, fake_wechat, catalog, clock, digest_time="09:00")
    assert "绑定成功" in await say(one, "o_staff", f"绑定 {await invite(db_url, 'community')}")
    code = await place(one, "o_res")  # its unit has nobody bound: not delivered
    await send_outbox(one)

    async def digest_everywhere() -> None:
        await asyncio.gather(
            *(app.client.app[keys.SCHEDULER].run_now("daily-digest") for app in (one, two))
        )
        await send_outbox(one)

    await digest_everywhere()
    assert fake_wechat.sent == []  # before DIGEST_TIME
    clock.advance(hours=1)
    for _ in range(2):
        await digest_everywhere()
    assert fake_wechat.deliveries() == {"o_staff": 1}
    text = fake_wechat.sent[0]["text"]["content"]
    assert "每日提醒" in text and code in text
    assert "超过24小时没有接单" in text and "这个单位还没有人绑定微信" in text

    # A restart (a new process, nothing in memory) the same day sends nothing more.
    three = await service(aiohttp_client, db_url, fake_wechat, catalog, clock, digest_time="09:00")
    await three.client.app[keys.SCHEDULER].run_now("daily-digest")
    await send_outbox(three)
    assert fake_wechat.deliveries() == {"o_staff": 1}

    # The next day, a new one.
    clock.advance(days=1)
    await digest_everywhere()
    assert fake_wechat.deliveries() == {"o_staff": 2}
    async with one.client.app[keys.SESSIONMAKER]() as session:
        keys_ = list(
            await session.scalars(
                select(models.OutboxMessage.key).where(
                    models.OutboxMessage.key.like("digest:%"),
                    models.OutboxMessage.channel == "log",
                )
            )
        )
    assert len(keys_) == 2


async def test_the_digest_waits_out_the_quiet_hours(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    fake_wechat.add_user("o_staff")
    clock = digest_clock(22, 30)
    wechat = await service(
        aiohttp_client,
        db_url,
        fake_wechat,
        wechat_catalog(tmp_path),
        clock,
        digest_time="23:00",
        quiet_hours="22:00-08:00",
    )
    assert "绑定成功" in await say(wechat, "o_staff", f"绑定 {await invite(db_url, 'community')}")
    await place(wechat, "o_res")
    await send_outbox(wechat)
    for hours in (1, 8):  # 23:30: quiet; 07:30: still quiet
        clock.advance(hours=hours) if hours == 1 else clock.advance(hours=8)
        await wechat.client.app[keys.SCHEDULER].run_now("daily-digest")
        await send_outbox(wechat)
        assert fake_wechat.sent == []
    clock.advance(minutes=31)  # 08:01: the quiet hours are over
    await wechat.client.app[keys.SCHEDULER].run_now("daily-digest")
    await send_outbox(wechat)
    assert fake_wechat.deliveries() == {"o_staff": 1}
