"""A message's effects happen once even when its attempt stalls, dies or is taken over.

Two services on one database stand for two processes. Each test reproduces one of
issue 18's interleavings with a fault-injection point (a handler that stops at a
gate the test opens), never with a sleep and a hope:

* a message answered "success" (its reply was late) whose process stops before it
  finishes is run again by the other process, and the resident gets one reply;
* an attempt that stalled past its lease, then resumes, cannot commit after another
  attempt took the message over (the claim's owner token fences it);
* a process whose clock is ahead does not take over a live attempt (leases are
  measured on the database's clock);
* a resident lock lost mid-handler (PostgreSQL cut the lock connection) lets a second
  message of the resident run at once, but the first then commits nothing at all,
  and WeChat's retry runs it on the new state: no effect twice, no update lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from bot import keys
from bot.dispatch import Context, Predicate, Router
from bot.pipeline.resident_locks import LOCK_CLASS
from bot.wechat.inbound import Incoming
from storage import models
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()


class Needs:
    """A handler with a real effect (an unmet need recorded) keyed by the run rather
    than the message, as an effect without a natural key (places taken) is: a second
    run shows as a second row. It can be made to stop at a gate, the test's
    fault-injection point."""

    def __init__(self, *, gate: asyncio.Event | None = None, writes: bool = True) -> None:
        self.gate = gate
        self.writes = writes
        """False: the handler only moves the conversation on (its record then goes
        in a batch with other messages', not in a transaction of its own)."""
        self.started = asyncio.Event()
        self.runs = 0
        self.router = Router("test-needs")
        self.router.on(Predicate(lambda msg, ctx: msg.event_key.startswith("TEST_NEED")))(
            self.record
        )

    def install(self, wechat: WeChatServer) -> None:
        wechat.client.app[keys.TENANTS].default.webhook.dispatcher.include(self.router)

    async def record(self, msg: Incoming, ctx: Context) -> str:
        self.runs += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()  # the fault point: the attempt stalls here
        if not self.writes:
            seen = int(ctx.conversation.data.get("n", 0))
            ctx.conversation.set("counting", n=seen + 1, by=id(self))
            return f"记下了：{msg.event_key}"
        async with ctx.sessionmaker.begin() as session:
            session.add(
                models.UnmetNeed(
                    community_id=ctx.community_id,
                    openid=msg.openid,
                    message_key=f"{msg.key}:{uuid.uuid4().hex}",
                    text=msg.event_key,
                    normalized=msg.event_key,
                    candidates=[],
                    catalog_version="test",
                )
            )
        seen = int(ctx.conversation.data.get("n", 0))
        ctx.conversation.set("counting", n=seen + 1)
        return f"记下了：{msg.event_key}"


async def needs_recorded(wechat: WeChatServer, text_: str) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(models.UnmetNeed)
                .where(models.UnmetNeed.text == text_)
            )
            or 0
        )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


def replies_to(fake: FakeWeChat, openid: str) -> list[str]:
    return [m["text"]["content"] for m in fake.sent if m.get("touser") == openid]


async def outlive_lease(wechat: WeChatServer, openid: str) -> None:
    """The fault of a stalled attempt: its claim's lease is over on the database's clock
    (a process paused, a machine swapping) while it still runs."""
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(
            update(models.ProcessedMessage)
            .where(models.ProcessedMessage.key.like(f"evt:{openid}:%"))
            .values(lease_until=func.now() - dt.timedelta(seconds=1))
        )


async def two_processes(
    aiohttp_client: Client, db_url: str, fake: FakeWeChat, **extra: Any
) -> tuple[WeChatServer, WeChatServer]:
    options: dict[str, Any] = {
        "wechat_app_id": fake.app_id,
        "wechat_app_secret": fake.app_secret,
        "wechat_api_base": fake.base_url,
        "scheduler_interval": 0.2,
        "leader_interval": 0.2,
        **extra,
    }
    first = await start(aiohttp_client, db_url, **options)
    second = await start(aiohttp_client, db_url, **options)
    return first, second


async def test_a_late_message_whose_process_stalls_is_run_by_the_other_and_answered_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.add_user("o_late")
    first, second = await two_processes(
        aiohttp_client, db_url, fake_wechat, reply_deadline=0.2, deferred_message_lease=1.0
    )
    stalled = Needs(gate=asyncio.Event())
    stalled.install(first)
    Needs().install(second)

    answer = await first.event("o_late", "CLICK", "TEST_NEED_LIGHT")
    assert answer.is_success  # late: WeChat will not send it again
    # The first process never finishes (stuck, or killed): the second runs the stored
    # message once its lease is over, and the resident gets the reply through the API.
    assert await eventually(lambda: asyncio.sleep(0, bool(replies_to(fake_wechat, "o_late"))))
    assert replies_to(fake_wechat, "o_late") == ["记下了：TEST_NEED_LIGHT"]
    assert await needs_recorded(second, "TEST_NEED_LIGHT") == 1

    stalled.gate.set()  # type: ignore[union-attr]  # the stalled attempt resumes …
    await asyncio.sleep(1.0)  # … and finds its claim taken: it commits nothing
    assert await needs_recorded(second, "TEST_NEED_LIGHT") == 1
    assert replies_to(fake_wechat, "o_late") == ["记下了：TEST_NEED_LIGHT"]


async def test_a_late_message_whose_process_stops_is_run_again_at_once(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """A process stopping (deploy, restart) cancels the message it was running: its
    claim is handed on at once rather than after the lease."""
    fake_wechat.add_user("o_stop")
    first, second = await two_processes(
        aiohttp_client, db_url, fake_wechat, reply_deadline=0.2, deferred_message_lease=600
    )
    stalled = Needs(gate=asyncio.Event())
    stalled.install(first)
    Needs().install(second)
    assert (await first.event("o_stop", "CLICK", "TEST_NEED_LIFT")).is_success
    await first.client.close()  # the first process stops with the message unfinished
    assert await eventually(lambda: asyncio.sleep(0, bool(replies_to(fake_wechat, "o_stop"))))
    assert replies_to(fake_wechat, "o_stop") == ["记下了：TEST_NEED_LIFT"]
    assert await needs_recorded(second, "TEST_NEED_LIFT") == 1


async def test_an_attempt_that_outlived_its_lease_cannot_commit_after_a_takeover(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    first, second = await two_processes(aiohttp_client, db_url, fake_wechat)
    stalled = Needs(gate=asyncio.Event())
    stalled.install(first)
    Needs().install(second)
    xml = first.event_xml("o_twice", "CLICK", "TEST_NEED_BINS")
    request = asyncio.ensure_future(first.post(xml))
    await asyncio.wait_for(stalled.started.wait(), 5)
    # The fault: the first attempt stalls longer than its lease (a process paused,
    # a machine swapping). Its lease is over on the database's clock.
    await outlive_lease(first, "o_twice")
    retry = await second.post(xml)  # WeChat's retry reaches the other process
    assert retry.text == "记下了：TEST_NEED_BINS"
    stalled.gate.set()  # type: ignore[union-attr]
    await request  # the first attempt ends: whatever it answers, it keeps nothing
    assert await needs_recorded(first, "TEST_NEED_BINS") == 1
    again = await first.post(xml)
    assert again.text == retry.text  # and later retries get the reply that counted


async def test_a_process_whose_clock_is_ahead_does_not_take_over_a_live_attempt(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    first = await start(aiohttp_client, db_url)
    ahead = FakeClock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    second = await start(aiohttp_client, db_url, clock=ahead, quiet_hours="00:00-00:00")
    slow = Needs(gate=asyncio.Event())
    slow.install(first)
    Needs().install(second)
    xml = first.event_xml("o_skew", "CLICK", "TEST_NEED_LAMP")
    request = asyncio.ensure_future(first.post(xml))
    await asyncio.wait_for(slow.started.wait(), 5)
    retry = asyncio.ensure_future(second.post(xml))  # its host's clock is 10 min ahead
    await asyncio.sleep(0.5)
    slow.gate.set()
    assert (await request).text == "记下了：TEST_NEED_LAMP"
    assert (await retry).text == "记下了：TEST_NEED_LAMP"  # waited, got the same reply
    assert await needs_recorded(first, "TEST_NEED_LAMP") == 1


async def test_a_lost_resident_lock_costs_a_retry_not_a_doubled_effect(
    db_url: str, aiohttp_client: Client, backend: str, fake_wechat: FakeWeChat
) -> None:
    if backend != "postgresql":
        pytest.skip("one process per SQLite database: its resident lock cannot be lost")
    first, second = await two_processes(aiohttp_client, db_url, fake_wechat)
    stalled = Needs(gate=asyncio.Event())
    stalled.install(first)
    Needs().install(second)
    one = first.event_xml("o_lock", "CLICK", "TEST_NEED_ONE")
    first_request = asyncio.ensure_future(first.post(one))
    await asyncio.wait_for(stalled.started.wait(), 5)
    # The fault: PostgreSQL cuts the connection holding the resident's lock.
    async with first.client.app[keys.ENGINE].connect() as connection:
        killed = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid = :cls"
            ),
            {"cls": LOCK_CLASS},
        )
    assert killed
    # So the resident's next message, on the other process, runs at once …
    two = await second.event("o_lock", "CLICK", "TEST_NEED_TWO")
    assert two.text == "记下了：TEST_NEED_TWO"
    stalled.gate.set()  # … and the first one, saving on a stale state, is refused
    assert (await first_request).status == 503
    stalled.gate = None
    retried = await first.post(one)  # WeChat's retry runs it on the new state
    assert retried.text == "记下了：TEST_NEED_ONE"
    assert await needs_recorded(first, "TEST_NEED_ONE") == 1
    assert await needs_recorded(first, "TEST_NEED_TWO") == 1
    async with first.client.app[keys.SESSIONMAKER]() as session:
        state = await session.scalar(
            select(models.ConversationState).where(models.ConversationState.openid == "o_lock")
        )
    assert state is not None and state.data == {"n": 2}  # neither update lost


async def test_a_retry_finding_a_dead_attempts_claim_stores_the_message_before_success(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """The process that claimed a message was killed before it could defer it, and its
    lease is not over yet when WeChat's retry comes: the retry may answer "success"
    (WeChat's time is up) only because it stores the message, which is run once the
    dead attempt's lease is over."""
    fake_wechat.add_user("o_dead")
    wechat = await start(
        aiohttp_client,
        db_url,
        wechat_app_id=fake_wechat.app_id,
        wechat_app_secret=fake_wechat.app_secret,
        wechat_api_base=fake_wechat.base_url,
        scheduler_interval=0.2,
        reply_deadline=0.3,
    )
    Needs().install(wechat)
    xml = wechat.event_xml("o_dead", "CLICK", "TEST_NEED_DEAD")
    event_time = xml.split("<CreateTime>")[1].split("<")[0]
    community = wechat.client.app[keys.TENANTS].default.id
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        session.add(  # the claim of the killed process, its lease still running
            models.ProcessedMessage(
                community_id=community,
                key=f"evt:o_dead:{event_time}:click:TEST_NEED_DEAD",
                received_at=dt.datetime.now(dt.UTC),
                expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                done=False,
                owner="killed",
                lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2),
            )
        )
    assert (await wechat.post(xml)).is_success  # WeChat's last retry: nothing after it
    assert await eventually(lambda: asyncio.sleep(0, bool(replies_to(fake_wechat, "o_dead"))))
    assert replies_to(fake_wechat, "o_dead") == ["记下了：TEST_NEED_DEAD"]
    assert await needs_recorded(wechat, "TEST_NEED_DEAD") == 1


async def test_a_stalled_attempt_that_wrote_nothing_cannot_save_its_state_after_a_takeover(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """The same fence for a handler that only moves the conversation on: its state and
    reply are recorded in a batch with other messages', and the batch refuses them
    alone once the claim is another's."""
    first, second = await two_processes(aiohttp_client, db_url, fake_wechat)
    stalled = Needs(gate=asyncio.Event(), writes=False)
    stalled.install(first)
    taker = Needs(writes=False)
    taker.install(second)
    xml = first.event_xml("o_light", "CLICK", "TEST_NEED_LIGHT")
    request = asyncio.ensure_future(first.post(xml))
    await asyncio.wait_for(stalled.started.wait(), 5)
    await outlive_lease(first, "o_light")
    assert (await second.post(xml)).text == "记下了：TEST_NEED_LIGHT"
    stalled.gate.set()  # type: ignore[union-attr]
    await request
    others = await first.event("o_other", "CLICK", "TEST_NEED_OTHER")  # batches go on
    assert others.text == "记下了：TEST_NEED_OTHER"
    async with first.client.app[keys.SESSIONMAKER]() as session:
        state = await session.scalar(
            select(models.ConversationState).where(models.ConversationState.openid == "o_light")
        )
    assert state is not None and state.data == {"n": 1, "by": id(taker)}
