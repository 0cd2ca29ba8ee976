"""Campaigns by WeChat's mass send, end to end: staff plan and preview a campaign on the
console, the service sends it as mass-send batches to the fake WeChat API, and WeChat's
MASSSENDJOBFINISH events come back through /wechat."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from bot import keys
from bot.wechat.errors import RateLimited
from storage import models
from storage.engine import create_engine, create_sessionmaker
from storage.migrate import upgrade
from tests.fake_clock import FakeClock
from tests.fake_wechat import (
    CUSTOM_SEND_PATH,
    MASS_SEND_PATH,
    TEMPLATE_SEND_PATH,
    FakeWeChat,
    fake_wechat_fixture,
)
from tests.test_broadcasts import cli, follow, received, schedule, send_all, service
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import say
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()

CAMPAIGN = {
    "topic": "anti-fraud",
    "title": "反诈提醒",
    "text": "陌生来电说退款、中奖，一律挂断，不转账。",
    "at": "2026-12-07 10:00",
}


def plain(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page)


async def finish_events(wechat: WeChatServer, fake: FakeWeChat) -> None:
    """WeChat's MASSSENDJOBFINISH for every job it took, as WeChat posts it."""
    for job in fake.mass_jobs:
        fields: dict[str, Any] = job.finish_event()
        event = fields.pop("Event")
        reply = await wechat.event("o_account_admin", event, **fields)
        assert reply.is_success  # nobody is answered


async def test_a_campaign_goes_to_each_eligible_follower_once_by_mass_send(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-12-07 09:55")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_batch=10)
    followers = [f"o_{n:02d}" for n in range(30)]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    assert "退订「反诈」" in await say(wechat, "o_07", "退订 反诈")
    await wechat.event("o_13", "unsubscribe")
    fake_wechat.users["o_13"].following = False
    eligible = sorted(set(followers) - {"o_07", "o_13"})

    await add_user(wechat, "staff1", "staff")
    browser = await login(wechat, "staff1")
    try:
        csrf = await csrf_of(browser, "/console/broadcasts")
        form = {"csrf": csrf, **CAMPAIGN}
        draft = plain(await (await browser.post("/console/broadcasts", data=form)).text())
        assert "公众号群发：28 人（分 3 次发出）" in draft
        assert "客服消息：0 人" in draft and "公众号发不到：0 人" in draft

        fake_wechat.add_user("o_staff", wxname="liu-shegong")
        previewed = await browser.post(
            "/console/broadcasts/preview", data={**form, "wxname": "liu-shegong"}
        )
        assert "预览已发到微信号 liu-shegong" in plain(await previewed.text())
        assert [p["towxname"] for p in fake_wechat.previews] == ["liu-shegong"]
        assert "陌生来电" in fake_wechat.previews[0]["text"]["content"]
        wrong = await browser.post(
            "/console/broadcasts/preview", data={**form, "wxname": "nobody-here"}
        )
        assert wrong.status == 400 and "这个微信号没有关注本公众号" in await wrong.text()
        assert not fake_wechat.mass_jobs  # previews only, nothing sent

        confirmed = await browser.post("/console/broadcasts", data={**form, "confirm": "yes"})
        assert confirmed.status == 200
        clock.set("2026-12-07 10:00")
        await send_all(wechat)

        calls = [r.body for r in fake_wechat.calls(MASS_SEND_PATH)]
        assert len(calls) == 3 and all(len(b["touser"]) <= 10 for b in calls)
        ids = [b["clientmsgid"] for b in calls]
        assert all(ids) and len(set(ids)) == 3
        assert sorted(o for b in calls for o in b["touser"]) == eligible  # each once
        assert received(fake_wechat) == dict.fromkeys(eligible, "mass")
        assert not fake_wechat.calls(CUSTOM_SEND_PATH) and not fake_wechat.calls(TEMPLATE_SEND_PATH)

        page = plain(await (await browser.get("/console/broadcasts")).text())
        assert "公众号群发：28 人，3/3 次已交给微信" in page and "微信回报" not in page
        await finish_events(wechat, fake_wechat)
        await finish_events(wechat, fake_wechat)  # WeChat retries: recorded once
        page = plain(await (await browser.get("/console/broadcasts")).text())
        assert "微信回报：送达 28 人" in page
    finally:
        await browser.close()


async def test_past_the_monthly_quota_a_follower_in_their_window_gets_a_service_message(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """A quota of one mass message a month (WeChat's is four: the same rule, fewer
    campaigns to run): the second campaign of the month goes by customer-service
    message to a follower who wrote today, reaches nobody who did not, and goes by
    mass send again in the next month."""
    fake_wechat.mass_quota = 1
    clock = FakeClock.at("2026-12-07 09:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_quota=1)
    for openid in ("o_full", "o_quiet"):
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url, at="2026-12-07 10:00", title="反诈提醒一")
    clock.set("2026-12-07 10:00")
    await send_all(wechat)
    assert fake_wechat.mass_received == {"o_full": 1, "o_quiet": 1}

    for openid in ("o_new1", "o_new2"):
        await follow(wechat, fake_wechat, openid)
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(  # o_quiet last wrote three days ago
            update(models.Resident)
            .where(models.Resident.openid == "o_quiet")
            .values(last_message_at=clock.now() - dt.timedelta(days=3))
        )
    second = await schedule(db_url, at="2026-12-07 11:00", title="反诈提醒二")
    clock.set("2026-12-07 11:00")
    await send_all(wechat)
    assert fake_wechat.mass_lists()[1:] == [["o_new1", "o_new2"]]
    assert [(m["touser"], "反诈提醒二" in m["text"]["content"]) for m in fake_wechat.sent] == [
        ("o_full", True)
    ]
    status = await cli(db_url, "broadcast", "status", second)
    assert "monthly mass quota spent, outside the 48-hour window: 1" in status

    await schedule(db_url, at="2027-01-04 10:00", title="反诈提醒三")
    clock.set("2027-01-04 10:00")  # a new month: everyone's quota is back
    await send_all(wechat)
    assert sorted(fake_wechat.mass_lists()[-1]) == ["o_full", "o_new1", "o_new2", "o_quiet"]
    assert len(fake_wechat.sent) == 1  # no customer-service message this time


async def test_the_fake_api_refuses_mass_sends_past_its_rate_and_repeats_none(
    db_url: str, fake_wechat: FakeWeChat
) -> None:
    """WeChat's rules the sender keeps to, over real HTTP through the service's own
    client: a clientmsgid used before sends nothing and answers the first msg_id;
    past the calls allowed a minute (60; here 3), 45009."""
    from tests.test_outbox import api_of

    engine = create_engine(db_url)
    await upgrade(engine)
    fake_wechat.mass_per_minute = 3
    for openid in ("o_1", "o_2"):
        fake_wechat.add_user(openid)
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, create_sessionmaker(engine), http, "jiedong", max_attempts=1)
        for n in range(2):
            await api.mass_send(["o_1", "o_2"], "防火", f"c{n}")
        again = await api.mass_send(["o_1", "o_2"], "防火", "c0")  # a repeat: not a new job
        with pytest.raises(RateLimited):
            await api.mass_send(["o_1", "o_2"], "防火", "c2")
    await engine.dispose()
    assert again.repeated and again.msg_id == fake_wechat.mass_jobs[0].msg_id
    assert len(fake_wechat.mass_jobs) == 2


async def test_a_rate_limited_batch_waits_a_minute_and_is_sent_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-12-07 09:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_batch=2)
    followers = [f"o_{n}" for n in range(4)]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url, at="2026-12-07 10:00")
    clock.set("2026-12-07 10:00")
    fake_wechat.fail_next(MASS_SEND_PATH, [0, 45009, 45009, 45009, 45009])  # 0: no failure
    await send_all(wechat)
    assert len(fake_wechat.mass_jobs) == 1  # the second batch was refused: the account waits
    await send_all(wechat)
    assert len(fake_wechat.mass_jobs) == 1
    clock.advance(seconds=61)
    await send_all(wechat)
    assert len(fake_wechat.mass_jobs) == 2
    assert received(fake_wechat) == dict.fromkeys(followers, "mass")


async def test_a_month_counts_what_went_out_in_it_and_what_probably_did(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """With a quota of one a month, as WeChat counts it: a campaign due on the last
    evening of November that quiet hours held to 1 December is December's; a batch
    given up unsettled (WeChat took it, its answers never came) probably went out and
    counts too. Neither follower is mass-sent again in December: the account would
    record as sent what WeChat filters out."""
    from tests.test_broadcasts import sender_on

    fake_wechat.mass_quota = 1
    clock = FakeClock.at("2026-11-30 20:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_quota=1)
    app = wechat.client.app
    for openid in ("o_1", "o_2"):
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url, at="2026-11-30 22:30", title="十一月")  # in the quiet hours
    clock.set("2026-11-30 22:30")
    await send_all(wechat)
    assert not fake_wechat.mass_jobs
    clock.set("2026-12-01 08:00")
    await send_all(wechat)
    assert fake_wechat.mass_received == {"o_1": 1, "o_2": 1}  # December's one each

    for openid in ("o_3", "o_4"):
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url, at="2026-12-01 09:00", title="十二月一")
    clock.set("2026-12-01 09:00")
    fake_wechat.set_slow(MASS_SEND_PATH, 1.0)  # taken, and every answer too late
    async with aiohttp.ClientSession() as http:
        sender = sender_on(app, fake_wechat, http, clock, timeout=0.3)
        await sender.run_once()
        fake_wechat.set_slow(MASS_SEND_PATH, 0)
        clock.set("2026-12-02 10:00")  # past the day WeChat keeps a clientmsgid
        await sender.run_once()
        await asyncio.sleep(1.0)
    async with app[keys.SESSIONMAKER]() as session:
        second = (
            await session.scalars(select(models.MassBatch).order_by(models.MassBatch.id))
        ).all()[-1]
    assert second.status == "unknown"  # not repeated: it may have gone out
    assert fake_wechat.mass_received["o_3"] == 1

    await schedule(db_url, at="2026-12-05 10:00", title="十二月二")
    clock.set("2026-12-05 10:00")  # everyone's windows closed long ago
    calls = len(fake_wechat.calls(MASS_SEND_PATH))
    await send_all(wechat)
    assert len(fake_wechat.calls(MASS_SEND_PATH)) == calls  # nobody has a December send left
    status = await cli(db_url, "broadcast", "status", "3")
    assert "monthly mass quota spent, outside the 48-hour window: 4" in status


async def test_a_batch_wechat_only_refused_is_sent_after_a_day_not_given_up(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """45028 (no mass-send quota) says WeChat sent nothing: the day after which a
    repeat is no longer safe does not start, and the batch goes out when it can."""
    clock = FakeClock.at("2026-12-07 09:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    for openid in ("o_1", "o_2"):
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url, at="2026-12-07 10:00")
    clock.set("2026-12-07 10:00")
    fake_wechat.fail_next(MASS_SEND_PATH, [45028])
    await send_all(wechat)
    assert not fake_wechat.mass_jobs
    clock.set("2026-12-08 12:00")
    await send_all(wechat)
    assert fake_wechat.mass_received == {"o_1": 1, "o_2": 1}
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        batch = await session.scalar(select(models.MassBatch))
    assert batch is not None and batch.status == "submitted"
