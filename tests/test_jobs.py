"""The scheduled-work mechanism (``bot.jobs``): what every queue built on it keeps.

* A row that fails is recorded as failed with its error, its effects undone, and the
  rest of the batch still runs, in the same run.
* A batch whose bulk preparation fails is acted on row by row: the failure is pinned
  on the one bad row instead of rolling the batch back at every poll.
* Two workers at once (two processes) never act on the same row: on PostgreSQL the
  second takes other rows without waiting; on SQLite it waits for the first's
  transaction and then finds its rows done.
* A job that needs no leader runs in a process that is not the leader, so a leader
  whose jobs are stuck holds up no community.
* A broadcast send slower than its lease is not settled as "unknown" while its
  sender is alive: the lease is renewed while WeChat takes its time.

The job in the first three is a small :class:`~bot.jobs.rows.RowJob` of the tests'
own over real reminder rows: every act writes an outbox row named after the worker,
so a row acted on twice shows as two outbox rows. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.jobs.broadcasts import BroadcastSender
from bot.jobs.rows import Outcomes, RowJob
from bot.tenants import Account, Accounts
from storage import models
from storage.repositories import outbox, reminders
from tests.fake_clock import FakeClock
from tests.fake_wechat import CUSTOM_SEND_PATH, FakeWeChat, fake_wechat_fixture
from tests.test_broadcasts import follow, schedule, service
from tests.test_outbox import api_of
from tests.webhook_app import Client, start

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "jobs"
NOW = "2026-12-07 10:00"

fake_wechat = fake_wechat_fixture()


class Marking(RowJob[models.Reminder, set[str]]):
    """Acts on a reminder by writing the outbox row ``<worker>:<key>``; fails on the
    keys in ``fail`` (after writing, so the effect must be undone); its preparation
    fails for any batch holding ``unpreparable``. ``hold``: the first act waits
    for it, inside the transaction, after setting ``inside``."""

    what = "test row"

    def __init__(
        self,
        sessionmaker: Sessions,
        clock: FakeClock,
        name: str,
        *,
        batch: int = 100,
        fail: frozenset[str] = frozenset(),
        unpreparable: str | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        super().__init__(sessionmaker, clock, batch=batch)
        self.name = name
        self.fail = fail
        self.unpreparable = unpreparable
        self.hold = hold
        self.inside = asyncio.Event()

    async def claim(
        self, session: AsyncSession, now: dt.datetime, limit: int
    ) -> list[models.Reminder]:
        return await reminders.claim_due(session, now=now, limit=limit)

    async def prepare(
        self, session: AsyncSession, rows: Sequence[models.Reminder], now: dt.datetime
    ) -> set[str]:
        keys = {row.key for row in rows}
        if self.unpreparable in keys:
            raise LookupError(f"nothing known of {self.unpreparable}")
        return keys

    async def act(
        self, session: AsyncSession, row: models.Reminder, prepared: set[str], now: dt.datetime
    ) -> bool:
        assert row.key in prepared
        await outbox.enqueue(
            session,
            community_id=COMMUNITY,
            key=f"{self.name}:{row.key}",
            channel="log",
            target="test",
            payload={},
        )
        if row.key in self.fail:
            raise RuntimeError(f"cannot act on {row.key}")
        if self.hold is not None and not self.inside.is_set():
            self.inside.set()
            await self.hold.wait()
        return True

    async def settle(
        self, session: AsyncSession, outcomes: Outcomes[models.Reminder], now: dt.datetime
    ) -> None:
        await reminders.finish(session, [r.id for r in outcomes.done], "done", now=now)
        await reminders.fail(session, [(r.id, error) for r, error in outcomes.failed], now=now)


async def due_rows(sessionmaker: Sessions, clock: FakeClock, *names: str) -> None:
    async with sessionmaker.begin() as session:
        session.add(models.Community(id=COMMUNITY, name="测试社区"))
        await session.flush()
        for n, name in enumerate(names):
            await reminders.schedule(
                session,
                community_id=COMMUNITY,
                key=name,
                kind="test",
                due_at=clock.now() - dt.timedelta(minutes=len(names) - n),  # in this order
            )


async def outcomes(sessionmaker: Sessions) -> tuple[dict[str, Any], list[str]]:
    """Each row's status (and error), and the keys of the effects committed."""
    async with sessionmaker() as session:
        found = {r.key: (r.status, r.error) for r in await session.scalars(select(models.Reminder))}
        effects = sorted(await session.scalars(select(models.OutboxMessage.key)))
    return found, effects


async def test_a_failing_row_is_set_aside_with_its_error_and_the_rest_still_run(
    sessionmaker: Sessions,
) -> None:
    clock = FakeClock.at(NOW)
    await due_rows(sessionmaker, clock, "first", "broken", "last")
    job = Marking(sessionmaker, clock, "w", fail=frozenset({"broken"}))
    assert await job.run_once() == 3  # one run: the bad row blocks nothing
    found, effects = await outcomes(sessionmaker)
    assert found["first"] == ("done", None) and found["last"] == ("done", None)
    assert found["broken"] == ("failed", "RuntimeError: cannot act on broken")
    assert effects == ["w:first", "w:last"]  # the failed row's effect undone
    assert await job.run_once() == 0  # set aside: not first in line at every poll


async def test_a_batch_that_cannot_be_prepared_is_acted_on_row_by_row(
    sessionmaker: Sessions,
) -> None:
    clock = FakeClock.at(NOW)
    await due_rows(sessionmaker, clock, "first", "unknown", "last")
    job = Marking(sessionmaker, clock, "w", unpreparable="unknown")
    assert await job.run_once() == 3
    found, effects = await outcomes(sessionmaker)
    assert found["first"][0] == found["last"][0] == "done"
    assert found["unknown"] == ("failed", "LookupError: nothing known of unknown")
    assert effects == ["w:first", "w:last"]


async def test_two_workers_at_once_never_act_on_the_same_row(
    sessionmaker: Sessions, backend: str
) -> None:
    """The first worker claims two of four rows and stops inside its transaction,
    holding them; a second worker runs meanwhile. Every row is acted on once."""
    clock = FakeClock.at(NOW)
    await due_rows(sessionmaker, clock, "r1", "r2", "r3", "r4")
    hold = asyncio.Event()
    first = Marking(sessionmaker, clock, "a", batch=2, hold=hold)
    second = Marking(sessionmaker, clock, "b", batch=2)
    running = asyncio.create_task(first.run_once())
    await asyncio.wait_for(first.inside.wait(), 5)
    other = asyncio.create_task(second.run_once())
    done, _ = await asyncio.wait({other}, timeout=1.0)
    if backend == "postgresql":  # SKIP LOCKED: the others' rows, without waiting
        assert done and other.result() == 2
    else:  # one writer at a time: it waits for the first transaction
        assert not done
    hold.set()
    handled = await running + await other
    found, effects = await outcomes(sessionmaker)
    assert {status for status, _ in found.values()} == {"done"}
    assert sorted(key.split(":")[1] for key in effects) == ["r1", "r2", "r3", "r4"]
    assert handled == 4
    if backend == "postgresql":
        assert effects == ["a:r1", "a:r2", "b:r3", "b:r4"]


async def test_a_process_that_does_not_lead_still_fires_reminders(
    db_url: str, aiohttp_client: Client, backend: str
) -> None:
    """Two processes of one deployment; the leader's jobs are stuck (here: stopped,
    while it keeps the leadership). Reminders are claimed safely by any process, so
    the other one fires them; they used to wait for the leader."""
    leader = await start(aiohttp_client, db_url, leader_interval=0.2, scheduler_interval=0.2)
    other = await start(aiohttp_client, db_url, leader_interval=0.2, scheduler_interval=0.2)
    if backend == "postgresql":
        await asyncio.sleep(0.5)
        assert leader.client.app[keys.LEADERSHIP].is_leader
        assert not other.client.app[keys.LEADERSHIP].is_leader
    await leader.client.app[keys.SCHEDULER].stop()
    sessionmaker = other.client.app[keys.SESSIONMAKER]
    community = other.client.app[keys.TENANTS].default.id
    async with sessionmaker.begin() as session:
        await reminders.schedule(
            session,
            community_id=community,
            key="orphan",
            kind="accept_remind",
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        )
    status = "pending"
    for _ in range(50):
        await asyncio.sleep(0.1)
        async with sessionmaker() as session:
            status = (
                await session.scalar(
                    select(models.Reminder.status).where(models.Reminder.key == "orphan")
                )
                or ""
            )
        if status != "pending":
            break
    assert status == "skipped"  # handled (no order: nothing left to chase)
    assert other.client.app[keys.SCHEDULER].runs_here("reminders")
    assert not other.client.app[keys.SCHEDULER].runs_here("outbox") or backend == "sqlite"


async def test_a_broadcast_send_slower_than_its_lease_is_not_settled_while_alive(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """WeChat takes longer than the lease to act on a notice and answer. Meanwhile
    another poll settles what dead senders left ``sending``: the live sender renews
    its lease, so its delivery is not settled as "unknown" (which a late "sent" does
    not overwrite). It is recorded as sent, and arrived once."""
    clock = FakeClock.at(NOW)
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    app = wechat.client.app
    await follow(wechat, fake_wechat, "o_slow")
    await schedule(db_url)
    fake_wechat.set_delay(CUSTOM_SEND_PATH, 2.5)
    sessionmaker = app[keys.SESSIONMAKER]
    served = app[keys.TENANTS].accounts
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http, served.default.id, timeout=10.0)
        accounts = Accounts([Account(a.id, a.catalog, api, a.resident_template) for a in served])

        def sender() -> BroadcastSender:
            return BroadcastSender(
                sessionmaker,
                accounts,
                app[keys.BATCH_DB],
                app[keys.POLICY],
                clock,
                lease=dt.timedelta(seconds=2),
            )

        sending = asyncio.create_task(sender().run_once())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if fake_wechat.calls(CUSTOM_SEND_PATH):
                break
        clock.advance(seconds=5)  # the lease taken at the claim has run out
        await asyncio.sleep(0.8)  # a live sender renews it every 0.5 s
        await sender().run_once()  # another poll settles abandoned deliveries
        assert await sending == 1

    async with sessionmaker() as session:
        delivery = await session.scalar(select(models.BroadcastDelivery))
    assert delivery is not None and (delivery.status, delivery.reason) == ("sent", None)
    assert fake_wechat.deliveries() == {"o_slow": 1}
