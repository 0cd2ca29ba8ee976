"""Exactly once, in order, and on time: retries, restarts, a second process, the 5 s
budget, and one resident's messages one at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from typing import Any

from sqlalchemy import select, text

from bot import keys
from bot.dispatch import Context, Predicate, Router
from bot.dispatch.router import SORRY
from bot.wechat.inbound import Incoming
from storage.models import ConversationState, ProcessedMessage
from storage.types import utcnow
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()


def clicked(prefix: str) -> Predicate:
    return Predicate(lambda msg, ctx: msg.event == "click" and msg.event_key.startswith(prefix))


class Recorder:
    """Test handlers, added to the service's dispatcher the way any router is."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, str, float, float]] = []  # openid, key, start, end
        self.router = Router("test")
        self.router.on(clicked("TEST_WORK"))(self.work)
        self.router.on(clicked("TEST_COUNT"))(self.count)

    def install(self, wechat: WeChatServer) -> None:
        wechat.client.app[keys.TENANTS].default.webhook.dispatcher.include(self.router)

    async def work(self, msg: Incoming) -> str:
        began = time.monotonic()
        await asyncio.sleep(self.delay)
        self.calls.append((msg.openid, msg.event_key, began, time.monotonic()))
        return f"办好了：{msg.event_key}"

    async def count(self, ctx: Context) -> str:
        seen = int(ctx.conversation.data.get("n", 0))
        await asyncio.sleep(0.005)  # let other messages run, if they are allowed to
        ctx.conversation.set("counting", n=seen + 1)
        return str(seen + 1)


# --- retries ---------------------------------------------------------------------------


async def test_a_retry_gets_the_same_reply_and_nothing_runs_twice(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    recorder = Recorder()
    recorder.install(wechat)
    xml = wechat.event_xml("o_res_1", "CLICK", key="TEST_WORK_1")
    first = await wechat.post(xml)
    again = [await wechat.post(xml) for _ in range(3)]
    assert first.text == "办好了：TEST_WORK_1"
    assert all(r.text == first.text for r in again)
    assert len(recorder.calls) == 1


async def test_concurrent_retries_run_once_and_all_get_the_reply(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    recorder = Recorder(delay=0.3)
    recorder.install(wechat)
    xml = wechat.event_xml("o_res_1", "CLICK", key="TEST_WORK_2")
    replies = await asyncio.gather(*(wechat.post(xml) for _ in range(4)))
    assert [r.text for r in replies] == ["办好了：TEST_WORK_2"] * 4
    assert len(recorder.calls) == 1


async def test_a_retry_reaching_another_process_runs_nothing_twice(
    db_url: str, aiohttp_client: Client
) -> None:
    """Two services on one database, as two processes would be."""
    one = await start(aiohttp_client, db_url)
    two = await start(aiohttp_client, db_url)
    recorder = Recorder(delay=0.3)
    recorder.install(one)
    recorder.install(two)
    xml = one.event_xml("o_res_1", "CLICK", key="TEST_WORK_3")
    replies = await asyncio.gather(one.post(xml), two.post(xml), one.post(xml), two.post(xml))
    assert {r.text for r in replies} == {"办好了：TEST_WORK_3"}
    assert len(recorder.calls) == 1


async def test_a_retry_after_a_restart_gets_the_reply_again(
    db_url: str, aiohttp_client: Client
) -> None:
    before = await start(aiohttp_client, db_url)
    xml = before.text_xml("o_res_1", "楼上老往我家滴水")
    first = await before.post(xml)
    await before.client.close()
    after = await start(aiohttp_client, db_url)
    assert (await after.post(xml)).text == first.text


async def test_a_claim_left_by_a_crashed_attempt_is_taken_over(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    recorder = Recorder()
    recorder.install(wechat)
    xml = wechat.event_xml("o_res_1", "CLICK", key="TEST_WORK_4")
    event_time = xml.split("<CreateTime>")[1].split("<")[0]
    community = wechat.client.app[keys.TENANTS].default.catalog.current.community_id
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        session.add(
            ProcessedMessage(
                community_id=community,
                key=f"evt:o_res_1:{event_time}:click:TEST_WORK_4",
                received_at=utcnow() - dt.timedelta(seconds=30),
                expires_at=utcnow() + dt.timedelta(days=1),
                done=False,
                owner="a crashed attempt",
                lease_until=utcnow() - dt.timedelta(seconds=25),
            )
        )
    reply = await wechat.post(xml)
    assert reply.text == "办好了：TEST_WORK_4"
    assert len(recorder.calls) == 1


# --- the 5-second budget -----------------------------------------------------------------


async def test_a_late_reply_goes_out_once_through_the_customer_service_api(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.add_user("o_res_1")
    wechat = await start(
        aiohttp_client,
        db_url,
        reply_deadline=0.3,
        wechat_app_id=fake_wechat.app_id,
        wechat_app_secret=fake_wechat.app_secret,
        wechat_api_base=fake_wechat.base_url,
    )
    recorder = Recorder(delay=1.0)
    recorder.install(wechat)
    xml = wechat.event_xml("o_res_1", "CLICK", key="TEST_WORK_5")

    began = time.monotonic()
    first = await wechat.post(xml)
    assert first.is_success and time.monotonic() - began < 0.9
    retry = await wechat.post(xml)  # WeChat retries while the handler still runs
    assert retry.is_success
    await asyncio.sleep(1.2)
    late_retry = await wechat.post(xml)  # and after it finished: still no second copy
    assert late_retry.is_success

    def sent_to_resident() -> list[dict[str, Any]]:
        return [m for m in fake_wechat.sent if m.get("touser") == "o_res_1"]

    for _ in range(50):  # through the outbox, within the worker's interval
        if sent_to_resident():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # another round of the outbox worker: no second copy
    sent = sent_to_resident()
    assert [m["text"]["content"] for m in sent] == ["办好了：TEST_WORK_5"]
    assert len(recorder.calls) == 1


async def test_without_credentials_late_replies_are_kept_for_the_simulator(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url, reply_deadline=0.2)
    recorder = Recorder(delay=0.5)
    recorder.install(wechat)
    assert (await wechat.event("o_res_1", "CLICK", key="TEST_WORK_6")).is_success
    for _ in range(50):  # the outbox worker hands it over within its interval
        outbox = await (await wechat.client.get("/dev/outbox", params={"openid": "o_res_1"})).json()
        if outbox["messages"]:
            break
        await asyncio.sleep(0.1)
    assert [(m["openid"], m["text"]) for m in outbox["messages"]] == [
        ("o_res_1", "办好了：TEST_WORK_6")
    ]
    later = await wechat.client.get(
        "/dev/outbox", params={"openid": "o_res_1", "after": outbox["messages"][-1]["seq"]}
    )
    assert (await later.json())["messages"] == []
    everyone = await wechat.client.get("/dev/outbox")
    assert everyone.status == 400  # one resident at a time, never the whole list


# --- one resident at a time --------------------------------------------------------------


async def test_one_residents_messages_run_in_order_others_in_parallel(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    recorder = Recorder(delay=0.2)
    recorder.install(wechat)
    began = time.monotonic()
    same = [wechat.event_xml("o_same", "CLICK", key=f"TEST_WORK_S{i}") for i in range(3)]
    others = [wechat.event_xml(f"o_other_{i}", "CLICK", key="TEST_WORK_O") for i in range(3)]
    posts = []
    for xml in same:
        posts.append(asyncio.ensure_future(wechat.post(xml)))
        await asyncio.sleep(0.02)  # arrival order
    posts += [asyncio.ensure_future(wechat.post(xml)) for xml in others]
    await asyncio.gather(*posts)

    mine = [c for c in recorder.calls if c[0] == "o_same"]
    assert [c[1] for c in mine] == ["TEST_WORK_S0", "TEST_WORK_S1", "TEST_WORK_S2"]
    for earlier, later in itertools.pairwise(mine):
        assert later[2] >= earlier[3]  # started after the previous one ended
    # The others did not queue behind o_same: all done well before 6 × 0.2 s.
    assert time.monotonic() - began < 0.9


async def test_state_is_read_under_the_residents_lock(db_url: str, aiohttp_client: Client) -> None:
    """Ten messages at once from one resident, each adding one to a counter kept in
    the conversation state: no update is lost."""
    wechat = await start(aiohttp_client, db_url)
    Recorder().install(wechat)
    replies = await asyncio.gather(
        *(wechat.event("o_res_1", "CLICK", key=f"TEST_COUNT_{i}") for i in range(10))
    )
    assert sorted(int(r.text) for r in replies) == list(range(1, 11))
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        state = await session.scalar(
            select(ConversationState).where(ConversationState.openid == "o_res_1")
        )
    assert state is not None and state.state == "counting" and state.data == {"n": 10}


async def test_a_message_the_database_could_not_take_is_not_acknowledged(
    db_url: str, aiohttp_client: Client
) -> None:
    """WeChat must retry it: answering "success" would lose it."""
    wechat = await start(aiohttp_client, db_url)
    engine = wechat.client.app[keys.ENGINE]
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE processed_messages RENAME TO pm_away"))
    try:
        reply = await wechat.text("o_res_1", "楼上老往我家滴水")
        assert reply.status == 503 and not reply.is_success
        assert (await wechat.client.get("/healthz")).status == 200  # still serving
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE pm_away RENAME TO processed_messages"))
    assert (await wechat.text("o_res_1", "楼上老往我家滴水")).status == 200


def test_what_counts_as_the_database_being_away() -> None:
    """Away (retry: the message is not acknowledged) versus refusing this data (the
    resident gets the apology; a retry would fail the same way)."""
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from storage.errors import database_failed, database_unavailable

    away = [
        OperationalError("SELECT 1", {}, ConnectionResetError()),
        PoolTimeout("QueuePool limit reached"),
        ConnectionRefusedError(),
    ]
    refused = [
        DataError("INSERT", {}, ValueError("value too long")),
        IntegrityError("INSERT", {}, ValueError("duplicate key")),
    ]
    assert all(database_unavailable(e) and database_failed(e) for e in away)
    assert not any(database_unavailable(e) for e in refused)
    assert all(database_failed(e) for e in refused)  # still never acknowledged as saved
    assert not database_unavailable(KeyError("a handler's own bug"))


async def test_an_answered_message_the_database_failed_is_run_again_when_it_is_back(
    db_url: str, aiohttp_client: Client, backend: str
) -> None:
    """WeChat was told "success" (the reply was late), then the database failed the
    handler: nobody will send the message again, so the service runs it again once
    the database is back and the resident still gets the answer."""
    wechat = await start(aiohttp_client, db_url, reply_deadline=0.2)
    webhook = wechat.client.app[keys.TENANTS].default.webhook
    runs: list[str] = []

    async def slow_write(msg: Incoming, ctx: Context) -> str:
        runs.append(msg.key)
        await asyncio.sleep(0.3)  # past the reply deadline: WeChat hears "success"
        async with ctx.sessionmaker.begin() as session:  # a table that comes later
            await session.execute(text("INSERT INTO late_probe (openid) VALUES (:o)"), {"o": "x"})
        return "记下了"

    router = Router("slow")
    router.on(clicked("TEST_SLOW"))(slow_write)
    webhook.dispatcher.include(router)
    assert (await wechat.event("o_far", "CLICK", key="TEST_SLOW")).is_success
    await asyncio.sleep(0.6)  # the first run failed: no such table
    async with wechat.client.app[keys.ENGINE].begin() as connection:
        await connection.execute(text("CREATE TABLE late_probe (openid VARCHAR(64))"))

    async def late() -> list[str]:
        outbox = await wechat.client.get("/dev/outbox", params={"openid": "o_far"})
        return [m["text"] for m in (await outbox.json())["messages"]]

    for _ in range(40):
        if await late():
            break
        await asyncio.sleep(0.1)
    if backend == "sqlite":  # "no such table" comes as the database being unavailable
        assert await late() == ["记下了"] and len(runs) >= 2
        async with wechat.client.app[keys.ENGINE].connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM late_probe")) == 1
    else:  # PostgreSQL refuses the statement itself: an apology, never silence
        assert await late() == [SORRY] and len(runs) == 1


async def test_an_answered_message_that_keeps_failing_is_given_up_with_one_apology(
    db_url: str, aiohttp_client: Client
) -> None:
    """A late message whose every run fails (the fault: the database connection reset
    each time) is not tried forever: after its runs it is settled with its error for
    staff, and the resident, who was told nothing, gets one apology."""
    from sqlalchemy.exc import OperationalError

    wechat = await start(aiohttp_client, db_url, reply_deadline=0.2, scheduler_interval=0.1)
    webhook = wechat.client.app[keys.TENANTS].default.webhook
    webhook.max_runs, webhook.rerun_pause = 3, 0.05
    runs: list[str] = []

    async def always_cut(msg: Incoming, ctx: Context) -> str:
        runs.append(msg.key)
        if len(runs) == 1:  # well past the 0.2 s reply deadline: WeChat hears "success"
            await asyncio.sleep(1.0)
        raise OperationalError("SELECT 1", {}, ConnectionResetError())

    router = Router("cut")
    router.on(clicked("TEST_CUT"))(always_cut)
    webhook.dispatcher.include(router)
    assert (await wechat.event("o_cut", "CLICK", key="TEST_CUT")).is_success

    async def late() -> list[str]:
        outbox = await wechat.client.get("/dev/outbox", params={"openid": "o_cut"})
        return [m["text"] for m in (await outbox.json())["messages"]]

    for _ in range(100):
        if await late():
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # more polls of the job: nothing more is run or sent
    assert await late() == [SORRY]
    assert len(runs) == 4  # the first run, then three by the job
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        row = await session.scalar(
            select(ProcessedMessage).where(ProcessedMessage.key.like("evt:o_cut:%"))
        )
    assert row is not None and row.done and "OperationalError" in (row.error or "")


async def test_a_failing_handler_leaves_neither_its_effects_nor_its_state(
    db_url: str, aiohttp_client: Client
) -> None:
    """A handler that wrote, moved the conversation on, then failed: the resident gets
    an apology and the message leaves nothing behind, so that sending it again works
    as the first time would have."""
    wechat = await start(aiohttp_client, db_url)
    failing = Router("failing")

    @failing.on(clicked("TEST_FAIL"))
    async def write_then_fail(msg: Incoming, ctx: Context) -> str:
        async with ctx.sessionmaker.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO unmet_needs (community_id, openid, message_key, text,"
                    " normalized, candidates, catalog_version, created_at)"
                    " VALUES (:c, :o, :k, 'TEST_FAIL', 'TEST_FAIL', '[]', 't', :now)"
                ),
                {"c": ctx.community_id, "o": msg.openid, "k": msg.key, "now": utcnow()},
            )
        ctx.conversation.set("booking_half_done", step=2)
        raise RuntimeError("a bug after its effects")

    wechat.client.app[keys.TENANTS].default.webhook.dispatcher.include(failing)
    assert (await wechat.event("o_fail", "CLICK", key="TEST_FAIL")).text == SORRY
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        needs = await session.scalar(
            text("SELECT count(*) FROM unmet_needs WHERE text = 'TEST_FAIL'")
        )
        state = await session.scalar(
            select(ConversationState).where(ConversationState.openid == "o_fail")
        )
    assert needs == 0
    assert state is None or state.state is None


async def test_a_message_waiting_for_the_matcher_holds_up_no_other_residents_write(
    db_url: str, aiohttp_client: Client
) -> None:
    """The one matching thread is busy (the fault: a long message being read). A
    resident's 好的 waits for it, and must do so before its transaction begins: on
    SQLite that transaction holds the write lock, and another resident following the
    account (which writes) was kept waiting until the database gave up (503)."""
    import threading

    wechat = await start(aiohttp_client, db_url, db_pool_timeout=1.0)
    assert (await wechat.text("o_warm", "帮助")).status == 200
    webhook = wechat.client.app[keys.TENANTS].default.webhook
    gate = threading.Event()
    busy = asyncio.get_running_loop().run_in_executor(webhook.matching, gate.wait, 10)
    try:
        ack = asyncio.ensure_future(wechat.text("o_ack", "好的"))
        await asyncio.sleep(0.3)  # 好的 is waiting for the matching thread
        began = time.monotonic()
        follow = await wechat.event("o_new", "subscribe")
        took = time.monotonic() - began
    finally:
        gate.set()
    await busy
    assert (await ack).status == 200
    assert follow.status == 200 and "欢迎" in follow.text and took < 0.8, (follow.status, took)
