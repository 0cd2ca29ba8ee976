"""Recurring notices chosen in words (每周五上午10点), not cron: stored, shown in words
on the console and by the CLI, and sent at that local time by the broadcast job."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot import keys
from storage import models
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.test_broadcasts import cli, follow, send_all, service
from tests.test_console import CSRF, add_user, login
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client

fake_wechat = fake_wechat_fixture()
NOTICE = {"topic": "drowning", "title": "防溺水提醒", "text": "暑假看好孩子，不去河边玩水。"}


@pytest.mark.parametrize(
    "chosen",
    [
        {"every": "每周五上午10点"},  # typed in words
        {"repeat": "week", "weekday": "五", "time": "10:00"},  # chosen with the widgets
    ],
    ids=["typed", "widgets"],
)
async def test_a_weekly_notice_in_words_is_stored_shown_and_sent_at_that_time(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, chosen: dict[str, str]
) -> None:
    clock = FakeClock.at("2026-07-02 09:00")  # a Thursday in the community's zone
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_parent")
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    token = CSRF.search(await (await staff.get("/console/broadcasts")).text())[1]  # type: ignore[index]
    form = {"csrf": token, **NOTICE, **chosen, "from": "2026-07-01", "until": "2026-08-31"}

    preview = await staff.post("/console/broadcasts", data=form)
    shown = visible_text(await preview.text())
    assert preview.status == 200, shown
    assert "定期：每周五上午10点" in shown and "2026-07-03 10:00 周五" in shown, shown
    confirmed = await staff.post(
        "/console/broadcasts", data={**form, "confirm": "yes"}, allow_redirects=False
    )
    assert confirmed.status == 302
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        stored = (await session.scalars(select(models.Broadcast.cron))).all()
    assert stored == ["0 10 * * fri"]
    listing = visible_text(await (await staff.get("/console/broadcasts")).text())
    assert "每周五上午10点，下次 2026-07-03 10:00 周五" in listing, listing
    assert not english_words(listing), listing

    # The existing broadcast job sends it on Friday at 10:00 local time, not before.
    await send_all(wechat)
    clock.set("2026-07-03 09:59")
    await send_all(wechat)
    assert not fake_wechat.sent
    clock.set("2026-07-03 10:00")
    await send_all(wechat)
    assert [m["touser"] for m in fake_wechat.sent] == ["o_parent"]
    await staff.close()


async def test_stored_cron_lines_are_shown_in_words_and_words_staff_cannot_use_are_explained(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    clock = FakeClock.at("2026-07-02 09:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    token = CSRF.search(await (await staff.get("/console/broadcasts")).text())[1]  # type: ignore[index]
    # A cron line as stored before (and as the CLI still takes it).
    old = await staff.post(
        "/console/broadcasts",
        data={"csrf": token, **NOTICE, "cron": "0 10 * * FRI", "confirm": "yes"},
        allow_redirects=False,
    )
    assert old.status == 302
    listing = visible_text(await (await staff.get("/console/broadcasts")).text())
    assert "每周五上午10点，下次" in listing and "FRI" not in listing, listing

    wrong = await staff.post(
        "/console/broadcasts", data={"csrf": token, **NOTICE, "every": "每周五"}
    )
    page = await wrong.text()
    assert wrong.status == 400 and "请写上几点发" in visible_text(page)
    assert 'value="每周五"' in page and 'value="防溺水提醒"' in page  # what was typed stays

    out = await cli(
        db_url,
        "broadcast",
        "create",
        "--topic",
        "防溺水",
        "--title",
        "每月提醒",
        "--text",
        "看好孩子。",
        "--every",
        "每月1号上午9点",
    )
    assert "every: 每月1号上午9点 (cron 0 9 1 * *)" in out, out
    assert re.search(r"sends: 20\d\d-\d\d-01 09:00 ", out), out
    await staff.close()
