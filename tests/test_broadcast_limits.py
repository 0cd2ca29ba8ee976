"""Broadcasts at their limits: dates no calendar conversion can take.

Against the fake WeChat API over real HTTP, with a clock the test moves.
"""

from __future__ import annotations

from pathlib import Path

from bot import keys
from storage import models
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.passwords import password_hash
from tests.test_broadcasts import cli, service
from tests.test_console import PASSWORD, csrf_of, login
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()


async def add_staff(wechat: WeChatServer) -> None:
    """``staff1`` in the served community (the demo catalog's)."""
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        session.add(
            models.User(
                community_id=app[keys.TENANTS].default.id,
                username="staff1",
                role="staff",
                password_hash=await password_hash(PASSWORD),
            )
        )


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


YEAR_ONE = "0001-01-01"


async def test_a_year_one_date_is_a_problem_in_the_form_and_the_cli(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    """``0001-01-01`` in the community's time zone (UTC+8) is before the year 1 in UTC:
    converting it raised OverflowError, a 500 on the console's form."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await add_staff(wechat)
    staff = await login(wechat, "staff1")
    token = await csrf_of(staff, "/console/broadcasts")
    form = {"csrf": token, "topic": "anti-fraud", "title": "反诈提醒", "text": "陌生来电一律挂断。"}
    for fields, label in (
        ({"at": YEAR_ONE}, "发送时间"),
        ({"cron": "0 10 * * *", "from": YEAR_ONE}, "开始日期"),
        ({"cron": "0 10 * * *", "until": YEAR_ONE}, "结束日期"),
        ({"at": "9999-12-31 23:59"}, "发送时间"),
    ):
        for confirm in ({}, {"confirm": "yes"}):
            reply = await staff.post(
                "/console/broadcasts", data={**form, **fields, **confirm}, headers=BROWSER
            )
            shown = visible_text(await reply.text())
            assert reply.status == 400, (fields, reply.status, shown[:300])
            assert f"{label}的年份不对" in shown, (fields, shown)
            assert not english_words(shown), (fields, english_words(shown))
    await staff.close()

    for option, extra in (
        ("--at", []),
        ("--from", ["--cron", "0 10 * * *"]),
        ("--until", ["--cron", "0 10 * * *"]),
    ):
        out = await cli(
            db_url,
            "broadcast",
            "create",
            "--topic",
            "反诈",
            "--title",
            "t",
            "--text",
            "x",
            option,
            YEAR_ONE,
            *extra,
            "--yes",
        )
        assert out.startswith("2\n"), out
        assert f"error: {option}: '0001-01-01' is out of range (years 2000 to 2099)" in out, out
