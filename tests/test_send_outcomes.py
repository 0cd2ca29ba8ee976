"""A message that was certainly not sent is sent later; only one that may have arrived
is recorded as unknown.

The edges of that line, each against a real peer on 127.0.0.1: a token endpoint that
times out or answers 5xx (no message went out), a WeChat whose connections never open
(SYNs dropped), and a kept-alive connection the other end had already closed. Notices
to residents and units go through the outbox, notices of broadcasts through the
broadcast sender; both must end up delivered exactly once, none lost as "unknown".
(A worker stopped in the middle of a batch: tests/test_outbox_claims.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.jobs.broadcasts import BroadcastSender
from bot.jobs.outbox import OutboxWorker
from bot.wechat.api import WeChatAPI
from bot.wechat.errors import OutcomeUnknown, WeChatUnavailable
from storage import models
from storage.repositories import outbox
from tests.fake_clock import FakeClock
from tests.fake_wechat import (
    CUSTOM_SEND_PATH,
    MASS_SEND_PATH,
    TOKEN_PATH,
    FakeWeChat,
    fake_wechat_fixture,
    unreachable,
)
from tests.test_broadcasts import follow, schedule, sender_on, service
from tests.test_outbox import api_of as outbox_api_of
from tests.webhook_app import Client

Sessions = async_sessionmaker[AsyncSession]
fake_wechat = fake_wechat_fixture()

COMMUNITY = "testville"
TIMEOUT = 0.6
"""The API client's timeout here (5 s in production): connecting may take half."""


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A base URL where no connection ever opens (see :func:`unreachable`)."""
    with unreachable() as url:
        yield url


def api_of(
    fake: FakeWeChat,
    sessionmaker: Sessions,
    http: aiohttp.ClientSession,
    *,
    base_url: str | None = None,
    community_id: str = COMMUNITY,
    **options: Any,
) -> WeChatAPI:
    """A community's API client: the production defaults, but a test-sized timeout,
    two attempts per call and short backoff."""
    return outbox_api_of(
        fake, sessionmaker, http, community_id, base_url=base_url, **{**CLIENT, **options}
    )


CLIENT: dict[str, Any] = {"timeout": TIMEOUT, "max_attempts": 2, "backoff_base": 0.05}


@dataclass
class Community:
    """The part of a community's account the outbox uses; tests swap the client."""

    customer_service: WeChatAPI
    resident_template: str | None = None


def outbox_worker(
    sessionmaker: Sessions,
    http: aiohttp.ClientSession,
    community: Community,
    clock: FakeClock,
    **options: Any,
) -> OutboxWorker:
    return OutboxWorker(
        sessionmaker,
        accounts=lambda community_id: community,
        http=http,
        clock=clock,
        backoff_base=1.0,
        timeout=TIMEOUT,
        **options,
    )


async def add_community(sessionmaker: Sessions) -> None:
    async with sessionmaker.begin() as session:
        session.add(models.Community(id=COMMUNITY, name="测试社区"))


async def notify(
    sessionmaker: Sessions,
    key: str,
    target: str,
    *,
    channel: str = "resident",
    config: dict[str, str] | None = None,
) -> None:
    """Enqueue a notification; ``config`` is the unit's channel as the catalog gives it."""
    payload: dict[str, Any] = {"title": "新订单", "text": f"您的订单有新进展（{key}）"}
    if config is not None:
        payload["channel"] = {"type": channel, **config}
    async with sessionmaker.begin() as session:
        await outbox.enqueue(
            session,
            community_id=COMMUNITY,
            key=key,
            channel=channel,
            target=target,
            payload=payload,
        )


async def rows(sessionmaker: Sessions) -> dict[str, models.OutboxMessage]:
    async with sessionmaker() as session:
        return {r.key: r for r in await session.scalars(select(models.OutboxMessage))}


def texts(fake: FakeWeChat) -> list[str]:
    """The customer-service texts WeChat took, in order."""
    return [m["text"]["content"] for m in fake.sent if m.get("msgtype") == "text"]


# --- 1. no access token: the message was not sent --------------------------------------


async def test_a_send_without_a_token_is_not_sent_rather_than_unknown(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """The token endpoint times out (WeChat issues a token we never see), answers 5xx,
    or cannot be reached: the message never left, and the caller is told so."""
    fake_wechat.add_user("o_resident")
    await add_community(sessionmaker)
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http)
        fake_wechat.set_slow(TOKEN_PATH, 2.0)
        with pytest.raises(WeChatUnavailable, match="not sent: no access token") as caught:
            await api.send_text("o_resident", "您好")
        assert "no answer within the timeout" in caught.value.errmsg
        fake_wechat.set_slow(TOKEN_PATH, 0)
        fake_wechat.fail_http(TOKEN_PATH, [502, 503])
        with pytest.raises(WeChatUnavailable, match=r"no access token \(HTTP 503\)"):
            await api.send_template("o_resident", "TPL", {"first": "您好"})
        await api.send_text("o_resident", "您好")  # the endpoint is back
    assert len(fake_wechat.calls(CUSTOM_SEND_PATH)) == 1
    assert fake_wechat.deliveries() == {"o_resident": 1}


async def test_a_notice_waits_out_a_failing_token_endpoint_and_arrives_once(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """Two notices to residents: one while no token can be had (5xx), one whose token
    WeChat rejects while the refresh times out. Neither was sent, so neither may be
    recorded as unknown: both are retried and arrive once when the endpoint is back."""
    fake_wechat.add_user("o_first")
    fake_wechat.add_user("o_second")
    await add_community(sessionmaker)
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        community = Community(api_of(fake_wechat, sessionmaker, http))
        worker = outbox_worker(sessionmaker, http, community, clock)

        await notify(sessionmaker, "accepted:AA0001", "o_first")
        fake_wechat.fail_http(TOKEN_PATH, [502, 502])
        assert await worker.run_once() == 1
        first = (await rows(sessionmaker))["accepted:AA0001"]
        assert (first.status, first.attempts) == ("pending", 1)
        assert "not sent: no access token (HTTP 502)" in (first.last_error or "")

        clock.advance(minutes=1)  # past the backoff
        await worker.run_once()  # the endpoint answers again: sent
        fake_wechat.invalidate_tokens()  # the stored token is now refused (40001)
        fake_wechat.set_slow(TOKEN_PATH, 2.0)  # and its forced refresh times out
        await notify(sessionmaker, "accepted:AA0002", "o_second")
        assert await worker.run_once() == 1
        second = (await rows(sessionmaker))["accepted:AA0002"]
        assert (second.status, second.attempts) == ("pending", 1)
        assert "no access token (no answer within the timeout)" in (second.last_error or "")

        fake_wechat.set_slow(TOKEN_PATH, 0)
        clock.advance(minutes=1)
        await worker.run_once()
        await asyncio.sleep(1.0)  # let the slow token answers finish

    found = await rows(sessionmaker)
    assert {key: (r.status, r.attempts) for key, r in found.items()} == {
        "accepted:AA0001": ("sent", 2),
        "accepted:AA0002": ("sent", 2),
    }
    assert fake_wechat.deliveries() == {"o_first": 1, "o_second": 1}


async def test_a_broadcast_waits_out_a_slow_token_endpoint_and_reaches_each_follower_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """The token endpoint answers later than the client waits: no mass send went out,
    so the batch and its deliveries stay pending (not "unknown") and each follower
    gets the notice once when the endpoint answers in time again."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    app = wechat.client.app
    followers = ["o_token_a", "o_token_b"]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url)
    fake_wechat.set_slow(TOKEN_PATH, 1.0)  # past the client's timeout
    sessionmaker = app[keys.SESSIONMAKER]
    async with aiohttp.ClientSession() as http:
        sender = sender_on(app, fake_wechat, http, clock, **CLIENT)
        for _ in range(2):
            await sender.run_once()
        async with sessionmaker() as session:
            waiting = list(await session.scalars(select(models.BroadcastDelivery)))
        assert {d.status for d in waiting} == {"pending"}, [(d.status, d.reason) for d in waiting]
        assert not fake_wechat.calls(MASS_SEND_PATH) and not fake_wechat.sent

        fake_wechat.set_slow(TOKEN_PATH, 0)
        for _ in range(4):
            clock.advance(seconds=15)  # past the 10 s retry
            await sender.run_once()
        await asyncio.sleep(1.0)  # let the slow token answers finish

    assert fake_wechat.mass_received == dict.fromkeys(followers, 1)
    async with sessionmaker() as session:
        done = list(await session.scalars(select(models.BroadcastDelivery)))
    assert [d.status for d in done] == ["sent", "sent"]


# --- 2. a connection that never opens: not sent ----------------------------------------


async def store_a_token(fake: FakeWeChat, sessionmaker: Sessions) -> None:
    """A valid token in the database, as any earlier call leaves it, so that the
    send itself is what meets the unreachable WeChat."""
    async with aiohttp.ClientSession() as http:
        await api_of(fake, sessionmaker, http).access_token()


async def test_a_send_to_an_unreachable_wechat_is_not_sent_rather_than_unknown(
    sessionmaker: Sessions, fake_wechat: FakeWeChat, nowhere: str
) -> None:
    """SYNs to WeChat are dropped: no connection opens, so nothing was sent. (With only
    a total timeout this ended in a plain TimeoutError, read as "no answer".)"""
    fake_wechat.add_user("o_resident")
    await add_community(sessionmaker)
    await store_a_token(fake_wechat, sessionmaker)
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http, base_url=nowhere)
        for send in (
            lambda: api.send_text("o_resident", "您好"),
            lambda: api.send_template("o_resident", "TPL", {"first": "您好"}),
        ):
            with pytest.raises(WeChatUnavailable) as caught:
                await send()
            assert not isinstance(caught.value, OutcomeUnknown)
            assert caught.value.errmsg == "not sent: no connection within the timeout"


@pytest.fixture
async def robot() -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
    """A WeCom group robot that posts what it gets to its group; its webhook URL."""
    posted: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/cgi-bin/webhook/send", handle)
    async with TestServer(app) as server:
        yield posted, str(server.make_url("/cgi-bin/webhook/send?key=k"))


async def test_notices_to_an_unreachable_wechat_or_robot_wait_and_arrive_once(
    sessionmaker: Sessions,
    fake_wechat: FakeWeChat,
    nowhere: str,
    robot: tuple[list[dict[str, Any]], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WeChat and the unit's WeCom robot are unreachable for a while: the notices stay
    pending and are delivered once each when they can be reached again."""
    posted, robot_url = robot
    fake_wechat.add_user("o_resident")
    await add_community(sessionmaker)
    await store_a_token(fake_wechat, sessionmaker)
    monkeypatch.setenv("GROUP_ROBOT_URL", f"{nowhere}/cgi-bin/webhook/send?key=k")
    group = {"url_env": "GROUP_ROBOT_URL"}
    await notify(sessionmaker, "placed:AB23CD:law:0", "law", channel="wecom_robot", config=group)
    await notify(sessionmaker, "accepted:AB23CD", "o_resident")
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        community = Community(api_of(fake_wechat, sessionmaker, http, base_url=nowhere))
        worker = outbox_worker(sessionmaker, http, community, clock)
        assert await worker.run_once() == 2
        waiting = await rows(sessionmaker)
        for key, row in waiting.items():
            assert (row.status, row.attempts) == ("pending", 1), (key, row.last_error)
            assert "no connection within the timeout" in (row.last_error or ""), key

        community.customer_service = api_of(fake_wechat, sessionmaker, http)
        monkeypatch.setenv("GROUP_ROBOT_URL", robot_url)
        clock.advance(minutes=1)
        assert await worker.run_once() == 2

    found = await rows(sessionmaker)
    assert {key: (r.status, r.attempts) for key, r in found.items()} == {
        "placed:AB23CD:law:0": ("sent", 2),
        "accepted:AB23CD": ("sent", 2),
    }
    assert fake_wechat.deliveries() == {"o_resident": 1}
    assert len(posted) == 1


async def test_a_broadcast_to_an_unreachable_wechat_waits_and_reaches_each_follower_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, nowhere: str
) -> None:
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    app = wechat.client.app
    followers = ["o_far_a", "o_far_b"]
    for openid in followers:
        await follow(wechat, fake_wechat, openid)
    await schedule(db_url)
    sessionmaker = app[keys.SESSIONMAKER]
    served = app[keys.TENANTS].accounts
    async with aiohttp.ClientSession() as http:

        def sender(base_url: str | None) -> BroadcastSender:
            return sender_on(app, fake_wechat, http, clock, base_url=base_url, **CLIENT)

        await api_of(fake_wechat, sessionmaker, http, community_id=served.default.id).access_token()
        cut_off = sender(nowhere)
        for _ in range(3):
            await cut_off.run_once()
        async with sessionmaker() as session:
            waiting = list(await session.scalars(select(models.BroadcastDelivery)))
        assert {d.status for d in waiting} == {"pending"}, [(d.status, d.reason) for d in waiting]

        assert not fake_wechat.calls(MASS_SEND_PATH)

        back = sender(None)
        for _ in range(3):
            clock.advance(seconds=15)
            await back.run_once()

    assert fake_wechat.mass_received == dict.fromkeys(followers, 1)
    async with sessionmaker() as session:
        done = list(await session.scalars(select(models.BroadcastDelivery)))
    assert [d.status for d in done] == ["sent", "sent"]


# --- 2b. a kept-alive connection the other end had closed ------------------------------


async def test_a_notice_is_not_lost_on_a_kept_alive_connection_wechat_had_closed(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """The token fetch leaves a connection in the pool; WeChat closes it just as the
    message would go out on it. The message must not ride on it (it would end "sent,
    no clear answer", and never be sent): it goes on a connection of its own."""
    fake_wechat.add_user("o_resident")
    fake_wechat.close_kept_alive = True
    await add_community(sessionmaker)
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http)
        await api.access_token()  # one request on a connection now kept alive
        await api.send_text("o_resident", "您的订单已被接单。")
        await api.send_text("o_resident", "服务人员已出发。")
    assert texts(fake_wechat) == ["您的订单已被接单。", "服务人员已出发。"]
    assert fake_wechat.closed_unread == 0


async def test_a_robot_notice_is_not_lost_on_a_kept_alive_connection_the_robot_closed(
    sessionmaker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit's webhook and its WeCom robot on one host: the webhook leaves a pooled
    connection, which the host closes as the robot's notice would go out on it."""
    posted: list[dict[str, Any]] = []
    hooked: list[str] = []
    used: set[object] = set()

    @web.middleware
    async def close_kept_alive(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.transport in used:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)
        used.add(request.transport)
        return await handler(request)

    async def robot_send(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def unit_system(request: web.Request) -> web.Response:
        hooked.append(request.headers["X-Order-Menu-Idempotency-Key"])
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[close_kept_alive])
    app.router.add_post("/cgi-bin/webhook/send", robot_send)
    app.router.add_post("/hook", unit_system)
    await add_community(sessionmaker)
    monkeypatch.setenv("UNIT_HOOK_SECRET", "unit-secret-for-tests")
    clock = FakeClock.at("2026-12-07 10:00")
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        monkeypatch.setenv("GROUP_ROBOT_URL", str(server.make_url("/cgi-bin/webhook/send?key=k")))
        hook = {"url": str(server.make_url("/hook")), "secret_env": "UNIT_HOOK_SECRET"}
        await notify(sessionmaker, "placed:AB23CD:law:0", "law", channel="webhook", config=hook)
        worker = outbox_worker(sessionmaker, http, Community(None), clock)  # type: ignore[arg-type]
        await worker.run_once()  # the webhook: its connection stays in the pool
        assert hooked == ["placed:AB23CD:law:0"]
        group = {"url_env": "GROUP_ROBOT_URL"}
        await notify(
            sessionmaker, "placed:AB23CD:law:1", "law", channel="wecom_robot", config=group
        )
        await worker.run_once()

    found = await rows(sessionmaker)
    robot_row = found["placed:AB23CD:law:1"]
    assert (robot_row.status, robot_row.last_error) == ("sent", None)
    assert len(posted) == 1
