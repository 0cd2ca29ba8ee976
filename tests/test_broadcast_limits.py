"""Broadcasts at their limits: a gateway that refuses every send, WeChat busy or over
its quota for a long time, and dates no calendar conversion can take.

Against the fake WeChat API over real HTTP, with a clock the test moves.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiohttp

from bot.jobs.broadcasts import MAX_ATTEMPTS, RETRY_CAP
from tests.fake_clock import FakeClock
from tests.fake_wechat import CUSTOM_SEND_PATH, TEMPLATE_SEND_PATH, FakeWeChat, fake_wechat_fixture
from tests.test_broadcasts import cli, follow, schedule, send_all, sender_on, service
from tests.test_console import add_user, csrf_of, login
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client

fake_wechat = fake_wechat_fixture()


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
LATER = RETRY_CAP + dt.timedelta(seconds=1)
"""Past any delivery's next attempt (and the 30 s pause after a 45009)."""


async def test_a_gateway_refusing_every_send_ends_the_run_with_the_reason(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """HTTP 403 from whatever stands in front of WeChat: retried with back-off, then
    the delivery is failed and the run finishes (it used to retry every 10 s forever)."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_refused")
    for path in (CUSTOM_SEND_PATH, TEMPLATE_SEND_PATH):
        fake_wechat.fail_http(path, [403] * 100)  # more than the sender will ever try
    broadcast_id = await schedule(db_url)

    async with aiohttp.ClientSession() as http:
        # One try per round: the client's own retries would only slow the test down.
        sender = sender_on(wechat.client.app, fake_wechat, http, clock, max_attempts=1)
        for _ in range(MAX_ATTEMPTS + 3):
            await sender.run_once()
            clock.advance(seconds=LATER.total_seconds())
        tries = len(fake_wechat.calls(CUSTOM_SEND_PATH))
        tries += len(fake_wechat.calls(TEMPLATE_SEND_PATH))
        await sender.run_once()
        await send_all(wechat)  # nor the service's own sender
    assert not fake_wechat.sent
    # Given up: no more tries however long the service runs.
    assert tries == len(fake_wechat.calls(CUSTOM_SEND_PATH)) + len(
        fake_wechat.calls(TEMPLATE_SEND_PATH)
    )

    status = await cli(db_url, "broadcast", "status", broadcast_id)
    assert "1/1 (100%)" in status and "failed   1" in status, status
    assert f"not taken by WeChat after {MAX_ATTEMPTS} attempts (refused: HTTP 403): 1" in status
    assert ", done" in status.splitlines()[1], status  # the broadcast is finished

    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    page = await staff.get("/console/broadcasts", headers=BROWSER)
    shown = visible_text(await page.text())
    assert "1/1（100%）" in shown and "未发出 1" in shown, shown
    assert "微信多次没有接收，已停止重试：1" in shown, shown
    await staff.close()


async def test_wechat_busy_for_longer_than_the_refusal_cap_is_retried_until_it_takes(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """-1 "system busy" (like an unreachable WeChat or a missing token) ends sooner or
    later: such a delivery is retried for as long as it lasts, past the tries a
    refusing gateway gets, and the notice goes out once."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_busy")
    rounds = MAX_ATTEMPTS + 2
    fake_wechat.fail_next(CUSTOM_SEND_PATH, [-1] * rounds)
    broadcast_id = await schedule(db_url)
    async with aiohttp.ClientSession() as http:
        # One try per round: the client's own retries would only slow the test down.
        sender = sender_on(wechat.client.app, fake_wechat, http, clock, max_attempts=1)
        for _ in range(rounds + 2):
            await sender.run_once()
            clock.advance(seconds=LATER.total_seconds())
    assert fake_wechat.deliveries() == {"o_busy": 1}
    assert "1/1 (100%)" in await cli(db_url, "broadcast", "status", broadcast_id)


async def test_a_long_rate_limit_does_not_use_up_a_deliverys_attempts(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """45009 is WeChat's quota for the whole account: however long it lasts, the
    delivery is not closer to being given up when a gateway then refuses it once."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await follow(wechat, fake_wechat, "o_patient")
    fake_wechat.fail_next(CUSTOM_SEND_PATH, [45009] * (MAX_ATTEMPTS + 1))
    broadcast_id = await schedule(db_url)
    async with aiohttp.ClientSession() as http:
        # One try per round (as above): each 45009 is a round of the sender's.
        sender = sender_on(wechat.client.app, fake_wechat, http, clock, max_attempts=1)
        for _ in range(MAX_ATTEMPTS + 1):
            await sender.run_once()
            clock.advance(seconds=LATER.total_seconds())
        assert len(fake_wechat.calls(CUSTOM_SEND_PATH)) == MAX_ATTEMPTS + 1
        fake_wechat.fail_http(CUSTOM_SEND_PATH, [403])  # its first counted try
        for _ in range(3):
            await sender.run_once()
            clock.advance(seconds=LATER.total_seconds())
    assert fake_wechat.deliveries() == {"o_patient": 1}
    assert "1/1 (100%)" in await cli(db_url, "broadcast", "status", broadcast_id)


YEAR_ONE = "0001-01-01"


async def test_a_year_one_date_is_a_problem_in_the_form_and_the_cli(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    """``0001-01-01`` in the community's time zone (UTC+8) is before the year 1 in UTC:
    converting it raised OverflowError, a 500 on the console's form."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    await add_user(wechat, "staff1", "staff")
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
