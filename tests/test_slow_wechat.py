"""A WeChat that delivers at once but answers later than the client waits.

A send that timed out after the request went out may well have arrived, and WeChat
has no idempotency key: it must not be sent again, by the API client or by its
caller. These tests run the real client against the fake WeChat in "slow" mode (it
delivers, then answers after a second) with a client timeout shorter than that, and
count the deliveries on the fake's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.jobs.outbox import OutboxWorker
from bot.wechat.api import WeChatAPI
from storage import models
from storage.repositories import outbox
from tests.fake_clock import FakeClock
from tests.fake_wechat import (
    CUSTOM_SEND_PATH,
    MASS_SEND_PATH,
    TEMPLATE_SEND_PATH,
    FakeWeChat,
    fake_wechat_fixture,
)
from tests.test_broadcasts import cli, follow, schedule, sender_on, service
from tests.test_console import add_user, login
from tests.test_outbox import api_of as outbox_api_of
from tests.webhook_app import Client

Sessions = async_sessionmaker[AsyncSession]
fake_wechat = fake_wechat_fixture()

ANSWER_AFTER = 1.0
"""Seconds the slow fake takes to answer (it has delivered the message by then)."""
CLIENT_TIMEOUT = 0.3
"""The client's timeout in these tests: shorter than the answer, as 5 s is to a 6 s one."""


def slow(fake: FakeWeChat) -> None:
    for path in (CUSTOM_SEND_PATH, TEMPLATE_SEND_PATH):
        fake.set_slow(path, ANSWER_AFTER)


def api_of(
    fake: FakeWeChat, sessionmaker: Sessions, http: aiohttp.ClientSession, community_id: str
) -> WeChatAPI:
    """The community's API client, on the production defaults but for the timeout."""
    return outbox_api_of(fake, sessionmaker, http, community_id, timeout=CLIENT_TIMEOUT)


# --- broadcasts ----------------------------------------------------------------------


async def test_a_broadcast_through_a_slow_wechat_reaches_each_follower_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """The issue's case, on the customer-service channel (mass send off): WeChat
    answers after the client's timeout. Each follower in their window gets the notice
    once (the old client sent it up to four times), one outside it is skipped, and both
    the CLI and the console say how many are unknown and what that means."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock, mass_send_quota=0)
    app = wechat.client.app
    followers = ["o_slow_a", "o_slow_b", "o_slow_c"]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    async with app[keys.SESSIONMAKER].begin() as session:  # o_slow_c: window closed
        await session.execute(
            update(models.Resident)
            .where(models.Resident.openid == "o_slow_c")
            .values(last_message_at=clock.now() - dt.timedelta(days=3))
        )
    broadcast_id = await schedule(db_url)
    slow(fake_wechat)

    async with aiohttp.ClientSession() as http:
        # The service's own sender, on a client with a short timeout.
        sender = sender_on(app, fake_wechat, http, clock, timeout=CLIENT_TIMEOUT)
        for _ in range(10):
            if not await sender.run_once():
                break
            clock.advance(minutes=5)
        await asyncio.sleep(ANSWER_AFTER)  # let the fake finish its answers

    assert fake_wechat.deliveries() == {"o_slow_a": 1, "o_slow_b": 1}
    async with app[keys.SESSIONMAKER]() as session:
        deliveries = list(await session.scalars(select(models.BroadcastDelivery)))
    assert sorted((d.status, d.attempts) for d in deliveries) == [
        ("skipped", 0),
        ("unknown", 1),
        ("unknown", 1),
    ]

    status = await cli(db_url, "broadcast", "status", broadcast_id)
    assert "3/3 (100%)" in status, status
    assert "unknown  2 (probably delivered; never resent" in status, status
    assert "sent, no clear answer from WeChat (no answer within the timeout): 2" in status

    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console/broadcasts")).text()
    await staff.close()
    assert "3/3（100%） · 已跳过 1 · 未确认 2" in page
    assert "有 2 条未确认" in page and "很可能已送达" in page and "不会重发" in page
    assert "发送后微信没有明确答复：2" in page
    assert "unknown" not in page


async def test_a_mass_send_through_a_slow_wechat_is_called_again_and_sent_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """The same slow WeChat for a mass send: WeChat takes the batch and its answer
    comes too late, again and again. Every later call carries the same clientmsgid,
    so when an answer finally arrives it is 45065 with the first call's msg_id:
    recorded, and nobody got it twice."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    app = wechat.client.app
    followers = ["o_slow_a", "o_slow_b", "o_slow_c"]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url)
    fake_wechat.set_slow(MASS_SEND_PATH, ANSWER_AFTER)
    async with aiohttp.ClientSession() as http:
        sender = sender_on(app, fake_wechat, http, clock, timeout=CLIENT_TIMEOUT)
        await sender.run_once()
        async with app[keys.SESSIONMAKER]() as session:
            batch = await session.scalar(select(models.MassBatch))
        assert batch is not None and batch.status == "pending"  # no answer: called again
        fake_wechat.set_slow(MASS_SEND_PATH, 0)  # WeChat answers in time again
        clock.advance(minutes=5)
        await sender.run_once()
        await asyncio.sleep(ANSWER_AFTER)

    ids = {r.body["clientmsgid"] for r in fake_wechat.calls(MASS_SEND_PATH)}
    assert len(fake_wechat.calls(MASS_SEND_PATH)) > 1 and len(ids) == 1
    assert len(fake_wechat.mass_jobs) == 1
    assert fake_wechat.mass_received == dict.fromkeys(followers, 1)
    async with app[keys.SESSIONMAKER]() as session:
        batch = await session.scalar(select(models.MassBatch))
        statuses = set(await session.scalars(select(models.BroadcastDelivery.status)))
    assert batch is not None and batch.status == "submitted" and batch.msg_id is not None
    assert batch.msg_id == fake_wechat.mass_jobs[0].msg_id and statuses == {"sent"}


# --- notifications (the outbox) ------------------------------------------------------


class SlowUnitSystem:
    """A unit's system that takes what it is sent at once and answers its first POST
    late; it keeps one notification per idempotency key, as docs/notifications.md
    asks of it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, str]] = []
        self.kept: dict[str, dict[str, Any]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            "key": request.headers.get("X-Order-Menu-Idempotency-Key", ""),
            "standard": request.headers.get("Idempotency-Key", ""),
        }
        self.posts.append(headers)
        self.kept.setdefault(headers["key"], json.loads(body))
        if len(self.posts) == 1:
            await asyncio.sleep(ANSWER_AFTER)
        return web.json_response({"ok": True})


class SlowRobot:
    """A WeCom group robot that posts to its group at once and answers late."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.posted.append(await request.json())
        await asyncio.sleep(ANSWER_AFTER)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def peers() -> AsyncIterator[tuple[SlowUnitSystem, str, SlowRobot, str]]:
    unit_system, robot = SlowUnitSystem(), SlowRobot()
    app = web.Application()
    app.router.add_post("/hook", unit_system.handle)
    app.router.add_post("/cgi-bin/webhook/send", robot.handle)
    async with TestServer(app) as server:
        yield (
            unit_system,
            str(server.make_url("/hook")),
            robot,
            str(server.make_url("/cgi-bin/webhook/send?key=k")),
        )


async def rows(sessionmaker: Sessions) -> dict[str, models.OutboxMessage]:
    async with sessionmaker() as session:
        return {r.key: r for r in await session.scalars(select(models.OutboxMessage))}


async def enqueue(
    sessionmaker: Sessions, key: str, channel: str, target: str, payload: dict[str, Any]
) -> None:
    async with sessionmaker.begin() as session:
        await outbox.enqueue(
            session,
            community_id="testville",
            key=key,
            channel=channel,
            target=target,
            payload={"title": "新订单", "text": "【新订单】法律咨询\n订单号：AB23CD", **payload},
        )


@dataclass(frozen=True)
class Community:
    """The part of a community's account the outbox uses."""

    customer_service: WeChatAPI
    resident_template: str | None = None


def worker(
    sessionmaker: Sessions, http: aiohttp.ClientSession, api: WeChatAPI, clock: FakeClock
) -> OutboxWorker:
    return OutboxWorker(
        sessionmaker,
        accounts=lambda community: Community(api),
        http=http,
        clock=clock,
        timeout=CLIENT_TIMEOUT,
        backoff_base=1.0,
    )


async def test_a_notification_is_retried_only_where_the_receiver_dedupes_by_its_key(
    sessionmaker: Sessions,
    fake_wechat: FakeWeChat,
    peers: tuple[SlowUnitSystem, str, SlowRobot, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three notifications whose receivers all act at once and answer late. The
    unit's own system dedupes by the idempotency key: asked again, it keeps one. A
    WeCom robot and WeChat cannot: each got one copy, recorded as unknown for staff."""
    unit_system, hook_url, robot, robot_url = peers
    monkeypatch.setenv("UNIT_HOOK_SECRET", "unit-secret-for-tests")
    monkeypatch.setenv("GROUP_ROBOT_URL", robot_url)
    fake_wechat.add_user("o_resident")
    slow(fake_wechat)
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
    hook = {"type": "webhook", "url": hook_url, "secret_env": "UNIT_HOOK_SECRET"}
    await enqueue(sessionmaker, "placed:AB23CD:law:0", "webhook", "law", {"channel": hook})
    group = {"type": "wecom_robot", "url_env": "GROUP_ROBOT_URL"}
    await enqueue(sessionmaker, "placed:AB23CD:law:1", "wecom_robot", "law", {"channel": group})
    await enqueue(sessionmaker, "accepted:AB23CD", "resident", "o_resident", {})
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        work = worker(
            sessionmaker, http, api_of(fake_wechat, sessionmaker, http, "testville"), clock
        )
        for _ in range(4):
            await work.run_once()
            clock.advance(minutes=10)  # past any backoff
        await asyncio.sleep(ANSWER_AFTER)

    found = await rows(sessionmaker)
    assert fake_wechat.deliveries() == {"o_resident": 1}
    assert len(robot.posted) == 1
    for once in ("placed:AB23CD:law:1", "accepted:AB23CD"):
        assert (found[once].status, found[once].attempts) == ("unknown", 1), once
        assert "no answer" in (found[once].last_error or "")
    key = "placed:AB23CD:law:0"
    assert (found[key].status, found[key].attempts) == ("sent", 2)
    assert unit_system.posts == [{"key": key, "standard": f'"{key}"'}] * 2  # same key twice
    assert list(unit_system.kept) == [key]


async def test_a_worker_stopped_mid_send_does_not_send_a_wechat_message_again(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """The process stops while WeChat has the message and has not answered yet. After
    the lease, the next worker records it as unknown instead of sending it again."""
    fake_wechat.add_user("o_resident")
    fake_wechat.set_slow(CUSTOM_SEND_PATH, 30.0)
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
    await enqueue(sessionmaker, "accepted:AB23CD", "resident", "o_resident", {})
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http, "testville")
        patient = WeChatAPI(
            app_id=fake_wechat.app_id,
            app_secret=fake_wechat.app_secret,
            base_url=fake_wechat.base_url,
            sessionmaker=sessionmaker,
            community_id="testville",
            http=http,
            timeout=60.0,  # still waiting when the process stops
        )
        first = asyncio.create_task(worker(sessionmaker, http, patient, clock).run_once())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if fake_wechat.deliveries():
                break
        first.cancel()  # the process stops mid-send
        with contextlib.suppress(asyncio.CancelledError):
            await first
        fake_wechat.set_slow(CUSTOM_SEND_PATH, 0)
        clock.advance(minutes=3)  # past the 120 s lease
        await worker(sessionmaker, http, api, clock).run_once()

    row = (await rows(sessionmaker))["accepted:AB23CD"]
    assert row.status == "unknown" and "stopped while sending" in (row.last_error or "")
    assert fake_wechat.deliveries() == {"o_resident": 1}
