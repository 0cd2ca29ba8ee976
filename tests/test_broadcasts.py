"""Broadcasts against the fake WeChat API: who gets them, how, how fast, when."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from click.testing import CliRunner
from sqlalchemy import select, update

from bot import keys
from bot.cli import main
from bot.jobs.broadcasts import BroadcastSender, next_due
from bot.tenants import Account, Accounts
from storage import models
from tests.fake_clock import SHANGHAI, FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.test_ordering import say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()
SCHEDULED = re.compile(r"scheduled: broadcast (\d+)")


async def cli(db_url: str, *args: str, **env: str) -> str:
    """``order-menu`` run with ``args``; ``env``: more settings (``MASS_SEND_QUOTA``)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, main, list(args), env={"DATABASE_URL": db_url, **env}
    )
    return f"{result.exit_code}\n{result.output}"


async def schedule(
    db_url: str,
    *,
    topic: str = "反诈",
    title: str = "反诈提醒",
    text: str = "陌生来电说退款、中奖，一律挂断。",
    at: str = "2026-12-07 10:00",
) -> str:
    """A broadcast scheduled through the CLI, as staff would (confirmed); its id."""
    out = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        topic,
        "--title",
        title,
        "--text",
        text,
        "--at",
        at,
        "--yes",
    )
    found = SCHEDULED.search(out)
    assert found is not None, out
    return found[1]


def sender_on(
    app: web.Application,
    fake: FakeWeChat,
    http: aiohttp.ClientSession,
    clock: FakeClock,
    **client: Any,
) -> BroadcastSender:
    """The service's broadcast sender, on a WeChat client of the test's own (``client``:
    its options, e.g. a short timeout)."""
    from tests.test_outbox import api_of

    sessionmaker = app[keys.SESSIONMAKER]
    served = app[keys.TENANTS].accounts
    api = api_of(fake, sessionmaker, http, served.default.id, **client)
    accounts = Accounts([Account(a.id, a.catalog, api, a.resident_template) for a in served])
    return BroadcastSender(
        sessionmaker,
        accounts,
        app[keys.BATCH_DB],
        app[keys.POLICY],
        clock,
        mass_quota=app[keys.SETTINGS].mass_send_quota,
    )


async def service(
    aiohttp_client: Client, db_url: str, fake: FakeWeChat, clock: FakeClock, **extra: Any
) -> WeChatServer:
    return await start(
        aiohttp_client,
        db_url,
        clock=clock,
        scheduler_interval=60,
        broadcast_rate=1000,
        wechat_app_id=fake.app_id,
        wechat_app_secret=fake.app_secret,
        wechat_api_base=fake.base_url,
        # Configured, and still never used for a campaign: templates are for service
        # notices, not publicity.
        wechat_resident_template_id="TPL_NOTICE",
        **extra,
    )


async def follow(wechat: WeChatServer, fake: FakeWeChat, openid: str, **user: bool) -> None:
    fake.add_user(openid, **user)
    assert "欢迎" in (await wechat.event(openid, "subscribe")).text


async def send_all(wechat: WeChatServer) -> None:
    await wechat.client.app[keys.SCHEDULER].run_now("broadcasts")


def received(fake: FakeWeChat) -> dict[str, str]:
    """openid → how the campaign reached them: ``mass`` (a mass send), ``text`` (a
    customer-service message) or ``template``. Nobody may be reached twice."""
    got: dict[str, str] = {}
    sent = [(m["touser"], "template" if "template_id" in m else "text") for m in fake.sent]
    sent += [(openid, "mass") for job in fake.mass_jobs for openid in job.delivered]
    for openid, how in sent:
        assert openid not in got, f"{openid} got two messages"
        got[openid] = how
    return got


def texts_received(fake: FakeWeChat) -> list[str]:
    return [m["text"]["content"] for m in fake.sent if "text" in m] + [
        job.text for job in fake.mass_jobs
    ]


async def test_topic_grid_and_tag_targeting_and_opt_out(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    for openid in ("o_a", "o_b", "o_c", "o_d", "o_e", "o_f"):
        await follow(wechat, fake_wechat, openid)
    assert "退订「防溺水」" in await say(wechat, "o_b", "退订 防溺水")
    assert "退订全部" in await say(wechat, "o_c", "退订全部")
    assert "反诈" in await say(wechat, "o_c", "我的订阅")  # offered again, not subscribed
    await wechat.event("o_d", "unsubscribe")
    for openid, grid, tags in (
        ("o_a", "g1", ["有未成年子女"]),
        ("o_e", "g1", []),
        ("o_f", "g2", ["有未成年子女"]),
    ):
        out = await cli(
            db_url,
            "residents",
            "set",
            openid,
            "--grid",
            grid,
            *[arg for t in tags for arg in ("--add-tag", t)],
        )
        assert out.startswith("0"), out

    preview = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "防溺水",
        "--title",
        "暑期防溺水",
        "--text",
        "不去野外游泳，不在无人看管处玩水。",
        "--tag",
        "有未成年子女",
    )
    assert "to: 2 subscribed followers" in preview and "preview only" in preview
    assert "mass send: 2 in 1 call(s)" in preview
    assert not fake_wechat.sent and not fake_wechat.mass_jobs
    out = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "防溺水",
        "--title",
        "暑期防溺水",
        "--text",
        "不去野外游泳，不在无人看管处玩水。",
        "--grid",
        "g1",
        "--at",
        "2026-12-07 10:00",
        "--yes",
    )
    assert SCHEDULED.search(out), out
    await send_all(wechat)
    await send_all(wechat)
    # g1's subscribers, by one mass send; not o_b (opted out)
    assert received(fake_wechat) == {"o_a": "mass", "o_e": "mass"}
    assert "暑期防溺水" in texts_received(fake_wechat)[0]
    assert "退订防溺水" in texts_received(fake_wechat)[0]  # how to stop them


async def test_customer_service_sends_skip_closed_windows_and_unfollowers_and_slow_down(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """With mass send off (quota 0) a campaign reaches only followers inside their
    48-hour window, one customer-service message each: nobody outside it gets a
    template message; one who left is marked unfollowed; 45009 slows the sends down
    and loses nothing."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_quota=0)
    for n in range(6):
        await follow(wechat, fake_wechat, f"o_{n}")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:  # o_0 wrote 3 days ago
        await session.execute(
            update(models.Resident)
            .where(models.Resident.openid == "o_0")
            .values(last_message_at=clock.now() - dt.timedelta(days=3))
        )
    fake_wechat.users["o_1"].following = False  # left; we have not heard yet
    fake_wechat.rate_limit = 3  # three calls a second, then 45009

    broadcast_id = await schedule(db_url)
    for _ in range(6):  # 45009 slows the sending down (backoff, then a pause); nothing lost
        await send_all(wechat)
        clock.advance(seconds=31)
        await asyncio.sleep(0.5)
    tries = len(fake_wechat.calls("/cgi-bin/message/custom/send"))
    assert tries > len(fake_wechat.sent) + 1  # some calls were answered 45009 and retried
    assert not fake_wechat.calls("/cgi-bin/message/template/send")
    assert received(fake_wechat) == {"o_2": "text", "o_3": "text", "o_4": "text", "o_5": "text"}
    status = await cli(db_url, "broadcast", "status", broadcast_id)
    assert "6/6 (100%)" in status and "unfollowed (43004): 1" in status
    assert "monthly mass quota spent, outside the 48-hour window: 1" in status
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        left = await session.scalar(select(models.Resident).where(models.Resident.openid == "o_1"))
    assert left is not None and not left.following


async def test_quiet_hours_defer_broadcasts(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    clock = FakeClock.at("2026-12-07 21:59")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_night")
    clock.set("2026-12-07 22:30")
    broadcast_id = await schedule(
        db_url, topic="消防", title="冬季防火", text="出门前关好电源和燃气。", at="2026-12-07 22:30"
    )
    await send_all(wechat)
    assert not fake_wechat.sent
    clock.set("2026-12-08 08:00")
    await send_all(wechat)
    assert received(fake_wechat) == {"o_night": "text"}
    csv_file = tmp_path / "report.csv"
    status = await cli(db_url, "broadcast", "status", broadcast_id, "--csv", str(csv_file))
    assert "1/1 (100%)" in status
    assert "o_night,sent" in csv_file.read_text(encoding="utf-8-sig")


def test_a_recurring_schedule_fires_on_the_right_dates() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    created = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    summer = models.Broadcast(
        cron="0 10 * * FRI",
        active_from=dt.datetime(2026, 7, 1, tzinfo=SHANGHAI).astimezone(dt.UTC),
        active_until=dt.datetime(2026, 8, 31, 23, 59, tzinfo=SHANGHAI).astimezone(dt.UTC),
        created_at=created,
    )
    dates, after = [], None
    while (due := next_due(summer, zone, after)) is not None:
        dates.append(due.astimezone(zone))
        after = due
    assert [f"{d:%m-%d %H:%M %a}" for d in dates[:2]] == ["07-03 10:00 Fri", "07-10 10:00 Fri"]
    assert f"{dates[-1]:%m-%d}" == "08-28" and len(dates) == 9
    assert all(d.utcoffset() == dt.timedelta(hours=8) for d in dates)
    assert dates[0].astimezone(dt.UTC).hour == 2  # 10:00 in Guilin is 02:00 UTC


async def test_a_recurring_broadcast_runs_once_per_occurrence(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-07-02 09:00")  # a Thursday
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_parent")
    await follow(wechat, fake_wechat, "o_teacher")
    out = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "防溺水",
        "--title",
        "防溺水提醒",
        "--text",
        "暑假看好孩子，不去河边玩水。",
        "--cron",
        "0 10 * * FRI",
        "--from",
        "2026-07-01",
        "--until",
        "2026-08-31",
        "--yes",
    )
    assert "2026-07-03 10:00 Fri" in out
    broadcast_id = SCHEDULED.search(out)[1]  # type: ignore[index]
    await send_all(wechat)
    assert not fake_wechat.mass_jobs  # not Friday yet
    clock.set("2026-07-03 10:00")
    await send_all(wechat)
    clock.set("2026-07-03 15:00")
    await send_all(wechat)
    assert len(fake_wechat.mass_jobs) == 1
    clock.set("2026-07-10 10:01")  # their 48-hour window is long closed: mass send needs none
    await send_all(wechat)
    assert len(fake_wechat.mass_jobs) == 2
    assert fake_wechat.mass_received == {"o_parent": 2, "o_teacher": 2}
    assert "2 run(s)" in await cli(db_url, "broadcast", "status", broadcast_id)


async def test_a_broadcast_is_checked_before_anything_is_sent(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-12-07 10:00")
    await service(aiohttp_client, db_url, fake_wechat, clock)
    too_long = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "反诈",
        "--title",
        "t",
        "--text",
        "字" * 601,
        "--yes",
    )
    assert too_long.startswith("2") and "error: --text: 601 characters, at most 600" in too_long
    no_topic = await cli(
        db_url, "broadcast", "create", "--topic", "彩票", "--title", "t", "--text", "x", "--yes"
    )
    assert "--topic: no topic '彩票'" in no_topic
    bad_cron = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "反诈",
        "--title",
        "t",
        "--text",
        "x",
        "--cron",
        "every friday",
        "--yes",
    )
    assert "--cron: 'every friday'" in bad_cron
