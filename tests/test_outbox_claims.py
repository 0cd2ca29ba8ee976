"""An outbox worker that stops in the middle of a batch, or loses its claim, sends
nothing twice and loses nothing.

A claimed row becomes ``sending`` only just before its own attempt, so a worker stopped
after the first row of a batch leaves the others ``pending`` (they are sent after the
lease), and only the row it was sending is settled as ``unknown``. A worker renews its
claim while it works; one whose claim ran out anyway does not send the rows another
worker took. Against the fake WeChat on 127.0.0.1, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest

from bot.jobs.outbox import OutboxWorker
from bot.jobs.queue import JobQueue
from tests.fake_clock import FakeClock
from tests.fake_wechat import CUSTOM_SEND_PATH, FakeWeChat, fake_wechat_fixture
from tests.test_send_outcomes import (
    Community,
    Sessions,
    add_community,
    api_of,
    notify,
    outbox_worker,
    rows,
    texts,
)

fake_wechat = fake_wechat_fixture()


async def test_a_service_stopped_after_the_first_of_three_notices_sends_the_rest_once(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """Three notices to one resident in one batch (sent one after the other). The
    service shuts down while WeChat has the first and has not answered, and the
    shutdown's grace runs out. The first may have arrived: unknown, never sent again.
    The two it never tried are sent after the lease, once each and in order; none is
    lost as unknown."""
    fake_wechat.add_user("o_resident")
    fake_wechat.set_slow(CUSTOM_SEND_PATH, 30.0)
    await add_community(sessionmaker)
    for n in (1, 2, 3):
        await notify(sessionmaker, f"step:{n}", "o_resident")
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        patient = Community(api_of(fake_wechat, sessionmaker, http, timeout=60.0))
        scheduler = JobQueue()
        scheduler.every(60, "outbox", outbox_worker(sessionmaker, http, patient, clock).run_once)
        polling = asyncio.create_task(scheduler.run_now("outbox"))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if fake_wechat.deliveries():
                break
        assert fake_wechat.deliveries() == {"o_resident": 1}
        await scheduler.stop(grace=0.2)  # the service stops mid-send
        assert polling.done()
        stopped = await rows(sessionmaker)
        assert [stopped[f"step:{n}"].status for n in (1, 2, 3)] == ["sending", "pending", "pending"]

        fake_wechat.set_slow(CUSTOM_SEND_PATH, 0)
        clock.advance(minutes=3)  # past the 120 s lease
        community = Community(api_of(fake_wechat, sessionmaker, http))
        await outbox_worker(sessionmaker, http, community, clock).run_once()

    found = await rows(sessionmaker)
    assert [(found[f"step:{n}"].status) for n in (1, 2, 3)] == ["unknown", "sent", "sent"]
    assert "stopped while sending" in (found["step:1"].last_error or "")
    assert [t[-7:] for t in texts(fake_wechat)] == ["step:1）", "step:2）", "step:3）"]


async def test_two_workers_never_send_a_notice_twice_when_a_claim_runs_out(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """A worker is stuck on a resident's first notice for longer than the lease and
    does not renew it in time (its renewals, every 30 s, come later than this test
    waits, as when the database is busy); a second worker takes the notices after it.
    When the first one comes back, it does not send the notices that are no longer
    its own: each arrives once, none is lost as unknown."""
    fake_wechat.add_user("o_resident")
    fake_wechat.set_delay(CUSTOM_SEND_PATH, 3.0)  # WeChat acts, and answers, after 3 s
    await add_community(sessionmaker)
    for n in (1, 2, 3):
        await notify(sessionmaker, f"step:{n}", "o_resident")
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        community = Community(api_of(fake_wechat, sessionmaker, http, timeout=10.0))
        stuck = asyncio.create_task(outbox_worker(sessionmaker, http, community, clock).run_once())
        for _ in range(200):
            await asyncio.sleep(0.02)
            if fake_wechat.calls(CUSTOM_SEND_PATH):
                break
        clock.advance(minutes=3)  # the first worker's lease has run out
        fake_wechat.set_delay(CUSTOM_SEND_PATH, 0)
        other = outbox_worker(sessionmaker, http, community, clock)
        assert await other.run_once() == 2  # steps 2 and 3, no longer claimed
        assert await stuck == 1  # step 1 only

    found = await rows(sessionmaker)
    assert [found[f"step:{n}"].status for n in (1, 2, 3)] == ["sent", "sent", "sent"]
    assert fake_wechat.deliveries() == {"o_resident": 3}
    assert sorted(t[-7:] for t in texts(fake_wechat)) == ["step:1）", "step:2）", "step:3）"]


async def test_a_worker_still_sending_keeps_its_claim_and_the_order(
    sessionmaker: Sessions, fake_wechat: FakeWeChat
) -> None:
    """A batch that takes longer than the lease (WeChat slow on each notice) is not
    taken over by another worker while the first is alive: it renews its claim, so a
    resident reads the notices in the order they were written."""
    fake_wechat.add_user("o_resident")
    fake_wechat.set_delay(CUSTOM_SEND_PATH, 0.6)
    await add_community(sessionmaker)
    for n in (1, 2, 3):
        await notify(sessionmaker, f"step:{n}", "o_resident")
    clock = FakeClock.at("2026-12-07 10:00")
    async with aiohttp.ClientSession() as http:
        community = Community(api_of(fake_wechat, sessionmaker, http, timeout=10.0))
        working = asyncio.create_task(
            outbox_worker(sessionmaker, http, community, clock, renew_every=0.1).run_once()
        )
        other = outbox_worker(sessionmaker, http, community, clock)
        taken = 0
        while not working.done():
            clock.advance(minutes=3)  # every lease runs out, but for renewals
            for _ in range(20):  # a live worker's renewal comes every 0.1 s; 1 s at most
                await asyncio.sleep(0.05)
                if working.done() or await held_beyond(sessionmaker, clock.now()):
                    break
            taken += await other.run_once()
        assert await working == 3
    assert taken == 0
    assert [t[-7:] for t in texts(fake_wechat)] == ["step:1）", "step:2）", "step:3）"]
    found = await rows(sessionmaker)
    assert [found[f"step:{n}"].status for n in (1, 2, 3)] == ["sent", "sent", "sent"]


async def held_beyond(sessionmaker: Sessions, moment: dt.datetime) -> bool:
    """Whether every row without an outcome yet is claimed beyond ``moment``."""
    found = await rows(sessionmaker)
    return all(
        row.next_attempt_at > moment
        for row in found.values()
        if row.status in ("pending", "sending")
    )


def test_a_lease_must_outlast_several_renewals(sessionmaker: Sessions) -> None:
    with pytest.raises(ValueError, match="renew_every"):
        OutboxWorker(
            sessionmaker,
            accounts=lambda community_id: None,  # type: ignore[arg-type,return-value]
            http=None,  # type: ignore[arg-type]
            clock=FakeClock.at("2026-12-07 10:00"),
            lease=dt.timedelta(seconds=60),
            renew_every=30.0,
        )
