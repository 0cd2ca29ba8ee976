"""Delivering notifications: retries until success (once), a crash between commit and
send, signed webhooks a unit can verify, WeCom robots, and residents' windows."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs.outbox import OutboxWorker
from bot.wechat.api import WeChatAPI
from bot.wechat.customer_service import CustomerService, DevOutbox
from storage import models
from storage.repositories import outbox
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture

Sessions = async_sessionmaker[AsyncSession]
SECRET = "unit-secret-for-tests"
fake_wechat = fake_wechat_fixture()


class Receiver:
    """A unit's own system: verifies the signature the documented way."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.fail_first = fail_first
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        timestamp = request.headers["X-Order-Menu-Timestamp"]
        # The recipe of docs/notifications.md: HMAC-SHA256 of "<timestamp>.<body>".
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), request.headers["X-Order-Menu-Signature"]):
            return web.Response(status=401)
        if self.calls <= self.fail_first:
            return web.Response(status=self.status)
        self.received.append(
            {**json.loads(body), "key": request.headers["X-Order-Menu-Idempotency-Key"]}
        )
        return web.json_response({"errcode": 0})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    unit_system = Receiver()
    app = web.Application()
    app.router.add_post("/hook", unit_system.handle)
    async with TestServer(app) as server:
        yield unit_system, str(server.make_url("/hook"))


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIT_HOOK_SECRET", SECRET)


async def enqueue(
    sessionmaker: Sessions, key: str, channel: dict[str, Any], target: str = "law"
) -> None:
    async with sessionmaker.begin() as session:
        await outbox.enqueue(
            session,
            community_id="testville",
            key=key,
            channel=str(channel["type"]),
            target=target,
            payload={
                "title": "新订单",
                "text": "【新订单】法律咨询\n订单号：AB23CD",
                "channel": channel,
            },
        )


@dataclass(frozen=True)
class Account:
    """The part of a community's account the outbox uses."""

    customer_service: CustomerService
    resident_template: str | None


def worker(
    sessionmaker: Sessions, http: aiohttp.ClientSession, clock: FakeClock, **options: Any
) -> OutboxWorker:
    account = Account(options.pop("cs", DevOutbox()), options.pop("resident_template", None))
    return OutboxWorker(
        sessionmaker,
        accounts=lambda community: account,
        http=http,
        clock=clock,
        backoff_base=1.0,
        **options,
    )


def api_of(
    fake: FakeWeChat,
    sessionmaker: Sessions,
    http: aiohttp.ClientSession,
    community_id: str = "testville",
    *,
    base_url: str | None = None,
    **options: Any,
) -> WeChatAPI:
    """A community's API client (testville's by default), talking to the fake WeChat
    (or to ``base_url``)."""
    return WeChatAPI(
        app_id=fake.app_id,
        app_secret=fake.app_secret,
        base_url=base_url or fake.base_url,
        sessionmaker=sessionmaker,
        community_id=community_id,
        http=http,
        **options,
    )


async def rows(sessionmaker: Sessions) -> list[models.OutboxMessage]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(models.OutboxMessage))).all())


async def test_a_channel_that_is_down_is_retried_until_it_takes_the_message_once(
    sessionmaker: Sessions, receiver: tuple[Receiver, str]
) -> None:
    unit_system, url = receiver
    unit_system.fail_first = 2
    clock = FakeClock.at("2026-12-07 10:00")
    channel = {"type": "webhook", "url": url, "secret_env": "UNIT_HOOK_SECRET"}
    await enqueue(sessionmaker, "placed:AB23CD:law:0", channel)
    await enqueue(sessionmaker, "placed:AB23CD:law:0", channel)  # enqueued twice: kept once
    async with aiohttp.ClientSession() as http:
        work = worker(sessionmaker, http, clock)
        for _ in range(6):
            await work.run_once()
            clock.advance(seconds=10)  # past the backoff
    [row] = await rows(sessionmaker)
    assert row.status == "sent" and row.attempts == 3
    assert unit_system.calls == 3 and len(unit_system.received) == 1
    assert unit_system.received[0]["key"] == "placed:AB23CD:law:0"
    assert "订单号：AB23CD" in unit_system.received[0]["text"]


async def test_a_backlog_drains_in_one_poll_each_recipient_in_order(
    sessionmaker: Sessions, receiver: tuple[Receiver, str]
) -> None:
    """More than a batch is due (a busy hour): one poll goes on batch after batch, and
    a unit's messages reach it in the order they were written."""
    unit_system, url = receiver
    clock = FakeClock.at("2026-12-07 10:00")
    channel = {"type": "webhook", "url": url, "secret_env": "UNIT_HOOK_SECRET"}
    for n in range(25):
        await enqueue(sessionmaker, f"placed:ORDER{n:02d}:law:0", channel)
        if n % 2:
            await enqueue(sessionmaker, f"placed:ORDER{n:02d}:police:0", {"type": "log"}, "police")
    async with aiohttp.ClientSession() as http:
        assert await worker(sessionmaker, http, clock).run_once() == 37
    assert all(row.status == "sent" for row in await rows(sessionmaker))
    assert [m["key"] for m in unit_system.received] == [
        f"placed:ORDER{n:02d}:law:0" for n in range(25)
    ]


async def test_when_a_message_must_wait_the_ones_after_it_wait_too(
    sessionmaker: Sessions, receiver: tuple[Receiver, str]
) -> None:
    unit_system, url = receiver
    unit_system.fail_first = 1  # the unit's system is down for the first call
    clock = FakeClock.at("2026-12-07 10:00")
    channel = {"type": "webhook", "url": url, "secret_env": "UNIT_HOOK_SECRET"}
    for key in ("placed:ORD001:law:0", "remind:ORD001", "escalate:ORD001"):
        await enqueue(sessionmaker, key, channel)
    async with aiohttp.ClientSession() as http:
        work = worker(sessionmaker, http, clock)
        await work.run_once()
        assert unit_system.received == []  # the later two did not overtake the first
        clock.advance(seconds=10)  # past the backoff
        await work.run_once()
    assert [m["key"] for m in unit_system.received] == [
        "placed:ORD001:law:0",
        "remind:ORD001",
        "escalate:ORD001",
    ]
    assert sorted(row.attempts for row in await rows(sessionmaker)) == [1, 1, 2]


async def test_a_crash_between_commit_and_send_delivers_exactly_once(
    sessionmaker: Sessions, receiver: tuple[Receiver, str]
) -> None:
    unit_system, url = receiver
    clock = FakeClock.at("2026-12-07 10:00")
    # The order and its notification were committed; the process died before sending.
    await enqueue(
        sessionmaker,
        "placed:CRASH1:law:0",
        {"type": "webhook", "url": url, "secret_env": "UNIT_HOOK_SECRET"},
    )
    async with aiohttp.ClientSession() as http:  # the restarted process
        restarted = worker(sessionmaker, http, clock)
        assert await restarted.run_once() == 1
        clock.advance(minutes=5)
        assert await restarted.run_once() == 0
    assert len(unit_system.received) == 1


async def test_failures_that_retrying_cannot_fix_are_marked_failed_for_staff(
    sessionmaker: Sessions, receiver: tuple[Receiver, str]
) -> None:
    unit_system, url = receiver
    unit_system.fail_first, unit_system.status = 100, 500
    clock = FakeClock.at("2026-12-07 10:00")
    await enqueue(
        sessionmaker, "k:down", {"type": "webhook", "url": url, "secret_env": "UNIT_HOOK_SECRET"}
    )
    await enqueue(
        sessionmaker,
        "k:nosecret",
        {"type": "webhook", "url": url, "secret_env": "NOT_SET_ANYWHERE"},
    )
    await enqueue(
        sessionmaker,
        "k:gone",
        {"type": "webhook", "url": url + "/nope", "secret_env": "UNIT_HOOK_SECRET"},
    )
    async with aiohttp.ClientSession() as http:
        work = worker(sessionmaker, http, clock, max_attempts=3)
        for _ in range(8):
            await work.run_once()
            clock.advance(minutes=10)
    found = {r.key: r for r in await rows(sessionmaker)}
    assert found["k:down"].status == "failed" and found["k:down"].attempts == 3
    assert "HTTP" in (found["k:down"].last_error or "") or "500" in (
        found["k:down"].last_error or ""
    )
    assert found["k:nosecret"].status == "failed" and found["k:nosecret"].attempts == 1
    assert "NOT_SET_ANYWHERE" in (found["k:nosecret"].last_error or "")
    assert found["k:gone"].status == "failed" and "404" in (found["k:gone"].last_error or "")


async def test_wecom_robots_get_markdown(
    sessionmaker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted: list[dict[str, Any]] = []

    async def robot(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.json_response({"errcode": 0 if len(posted) > 1 else 93000, "errmsg": "x"})

    app = web.Application()
    app.router.add_post("/cgi-bin/webhook/send", robot)
    async with TestServer(app) as server:
        monkeypatch.setenv("GROUP_ROBOT_URL", str(server.make_url("/cgi-bin/webhook/send?key=k")))
        clock = FakeClock.at("2026-12-07 10:00")
        await enqueue(
            sessionmaker, "k:robot", {"type": "wecom_robot", "url_env": "GROUP_ROBOT_URL"}
        )
        async with aiohttp.ClientSession() as http:
            work = worker(sessionmaker, http, clock)
            await work.run_once()  # errcode 93000: retried
            clock.advance(seconds=10)
            await work.run_once()
    assert posted[-1]["msgtype"] == "markdown"
    assert posted[-1]["markdown"]["content"].startswith("**【新订单】法律咨询**")
    [row] = await rows(sessionmaker)
    assert row.status == "sent" and row.attempts == 2


async def test_residents_get_customer_service_messages_or_templates(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.add_user("o_inside")
    fake_wechat.add_user("o_outside", window_open=False)
    fake_wechat.add_user("o_left", following=False)
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
        await session.flush()
        session.add(models.Resident(community_id="testville", openid="o_left", tags=[]))
    clock = FakeClock.at("2026-12-07 10:00")
    for openid in ("o_inside", "o_outside", "o_left"):
        async with sessionmaker.begin() as session:
            await outbox.enqueue(
                session,
                community_id="testville",
                key=f"k:{openid}",
                channel="resident",
                target=openid,
                payload={"text": "您的订单已被接单。"},
            )
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http)
        await worker(sessionmaker, http, clock, cs=api, resident_template="TPL_RESIDENT").run_once()
    found = {r.target: r for r in await rows(sessionmaker)}
    assert found["o_inside"].status == "sent" and found["o_outside"].status == "sent"
    kinds = {m["touser"]: ("template_id" in m) for m in fake_wechat.sent}
    assert kinds == {"o_inside": False, "o_outside": True}
    assert found["o_left"].status == "failed" and "43004" in (found["o_left"].last_error or "")
    async with sessionmaker() as session:
        left = await session.scalar(
            select(models.Resident).where(models.Resident.openid == "o_left")
        )
    assert left is not None and not left.following


async def test_wechat_channel_reaches_the_units_bound_members(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.add_user("o_member")
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
        await session.flush()
        unit = models.Unit(community_id="testville", key="law", name="律所", kind="两新组织")
        empty = models.Unit(community_id="testville", key="clinic", name="卫生站", kind="医疗")
        session.add_all([unit, empty])
        await session.flush()
        session.add(models.UnitMember(unit_id=unit.id, openid="o_member"))
    await enqueue(sessionmaker, "k:template", {"type": "wechat", "template_id": "TPL_UNIT"})
    await enqueue(sessionmaker, "k:text", {"type": "wechat"})
    await enqueue(sessionmaker, "k:nobody", {"type": "wechat"}, target="clinic")
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http)
        await worker(sessionmaker, http, clock, cs=api).run_once()
    found = {r.key: r for r in await rows(sessionmaker)}
    assert found["k:template"].status == "sent" and found["k:text"].status == "sent"
    assert found["k:nobody"].status == "failed" and "no bound members" in (
        found["k:nobody"].last_error or ""
    )
    templates = [m for m in fake_wechat.sent if m.get("template_id") == "TPL_UNIT"]
    texts = [m for m in fake_wechat.sent if m.get("msgtype") == "text"]
    assert [m["touser"] for m in templates] == ["o_member"]
    assert [m["touser"] for m in texts] == ["o_member"] and "AB23CD" in texts[0]["text"]["content"]


async def test_a_flaky_wechat_api_drains_the_backlog_and_sends_nothing_twice(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """Errors (-1 busy, 45009 rate limit) at random and a spell of timeouts: refusals
    are retried, bounded, until the backlog drains; a send that timed out may have
    arrived, so it is kept as unknown for staff and never sent again. Nobody gets a
    message twice."""
    import random

    rng = random.Random(20261127)
    residents = [f"o_flaky_{n:02d}" for n in range(30)]
    for openid in residents:
        fake_wechat.add_user(openid)
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
        for openid in residents:
            await outbox.enqueue(
                session,
                community_id="testville",
                key=f"k:{openid}",
                channel="resident",
                target=openid,
                payload={"text": "您的订单已被接单。"},
            )
    fake_wechat.fail_next(
        "/cgi-bin/message/custom/send", [rng.choice([-1, 45009]) for _ in range(40)]
    )
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        api = api_of(
            fake_wechat, sessionmaker, http, timeout=0.3, max_attempts=2, backoff_base=0.01
        )
        work = worker(sessionmaker, http, clock, cs=api, max_attempts=20)
        fake_wechat.set_slow("/cgi-bin/message/custom/send", 0.4)  # first: timeouts
        await worker(sessionmaker, http, clock, cs=api, batch=4).run_once()
        fake_wechat.set_slow("/cgi-bin/message/custom/send", 0)
        for _ in range(30):
            clock.advance(minutes=10)
            if not await work.run_once():
                break
    found = await rows(sessionmaker)
    assert {r.status for r in found} == {"sent", "unknown"}  # drained
    assert max(r.attempts for r in found) <= 20  # bounded
    delivered = fake_wechat.deliveries()
    assert max(delivered.values()) == 1  # nobody got it twice
    sent = {r.target for r in found if r.status == "sent"}
    assert sent <= set(delivered)  # what is marked sent arrived
    for row in found:
        if row.status == "unknown":  # timed out, each after one attempt
            assert row.attempts == 1 and "no answer" in (row.last_error or "")


async def test_a_member_who_cannot_be_reached_does_not_make_the_others_get_it_twice(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    from bot.orders.effects import notify_unit
    from catalog.loader import parse_catalog

    catalog = parse_catalog(
        """
community: {id: testville, name: 测试社区}
units:
  - {id: law, name: 律所, kind: 两新组织, channels: [{type: wechat}]}
items:
  - {id: consult, title: 法律咨询, unit: law, category: 平安法治}
"""
    )
    for openid in ("o_m1", "o_m2"):
        fake_wechat.add_user(openid)
    async with sessionmaker.begin() as session:
        session.add(models.Community(id="testville", name="测试社区"))
        await session.flush()
        unit = models.Unit(community_id="testville", key="law", name="律所", kind="两新组织")
        session.add(unit)
        await session.flush()
        session.add_all([models.UnitMember(unit_id=unit.id, openid=o) for o in ("o_m1", "o_m2")])
        await session.flush()
        await notify_unit(session, catalog, "law", "placed:AB23CD", "新订单", ["【新订单】"])
    assert len(await rows(sessionmaker)) == 2  # one per member
    fake_wechat.fail_next("/cgi-bin/message/custom/send", [-1, -1])  # o_m1, twice over
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http, max_attempts=2, backoff_base=0.01)
        work = worker(sessionmaker, http, clock, cs=api)
        await work.run_once()
        clock.advance(minutes=5)
        await work.run_once()
    assert sorted(m["touser"] for m in fake_wechat.sent) == ["o_m1", "o_m2"]
    assert {r.status for r in await rows(sessionmaker)} == {"sent"}
