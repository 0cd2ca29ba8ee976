"""A resident's lock holds across processes (two engines stand for two processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bot.pipeline.resident_locks import LOCK_CLASS, ResidentLocks, lock_key
from storage.engine import create_engine


@pytest.fixture
async def two_processes(db_url: str) -> AsyncIterator[tuple[ResidentLocks, ResidentLocks]]:
    engines = [create_engine(db_url, pool_size=2) for _ in range(2)]
    locks = (ResidentLocks(engines[0], poll=0.01), ResidentLocks(engines[1], poll=0.01))
    try:
        yield locks
    finally:
        for lock in locks:
            await lock.close()
        for engine in engines:
            await engine.dispose()


async def held_elsewhere(locks: ResidentLocks, key: str, events: list[str]) -> None:
    async with locks(key):
        events.append(f"got {key}")


async def test_one_resident_waits_for_the_other_process_and_others_do_not(
    two_processes: tuple[ResidentLocks, ResidentLocks], backend: str
) -> None:
    first, second = two_processes
    events: list[str] = []
    async with first("testville:o_1"):
        waiting = asyncio.create_task(held_elsewhere(second, "testville:o_1", events))
        # Another resident, and the same openid in another community, go ahead.
        await asyncio.wait_for(held_elsewhere(second, "testville:o_2", events), 2)
        await asyncio.wait_for(held_elsewhere(second, "riverside:o_1", events), 2)
        await asyncio.sleep(0.3)
        if backend == "sqlite":  # one process only: nothing to share between engines
            await asyncio.wait_for(waiting, 2)
            return
        assert not waiting.done(), "the second process went ahead while the first held it"
        events.append("first done")
    await asyncio.wait_for(waiting, 2)
    assert events == ["got testville:o_2", "got riverside:o_1", "first done", "got testville:o_1"]


async def test_a_lost_lock_connection_frees_its_residents(
    two_processes: tuple[ResidentLocks, ResidentLocks], backend: str, db_url: str
) -> None:
    """A process whose lock connection dies (killed, database restarted) holds nothing:
    PostgreSQL released the locks, the others go on, and the first one survives it."""
    if backend == "sqlite":
        pytest.skip("advisory locks are PostgreSQL's")
    first, second = two_processes
    events: list[str] = []
    async with first("testville:o_1"):
        admin = create_engine(db_url, pool_size=1)
        try:
            async with admin.begin() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND classid = :cls AND objid = :key"
                    ),
                    {"cls": LOCK_CLASS, "key": lock_key("testville:o_1") & 0xFFFFFFFF},
                )
        finally:
            await admin.dispose()
        assert killed == 1
        await asyncio.wait_for(held_elsewhere(second, "testville:o_1", events), 2)
    assert events == ["got testville:o_1"]
    # The first process opens a new lock connection at once: its lock holds again.
    async with first("testville:o_1"):
        waiting = asyncio.create_task(held_elsewhere(second, "testville:o_1", events))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the first process handled the resident without its lock"
        events.append("first again")
    await asyncio.wait_for(waiting, 2)
    assert events[-2:] == ["first again", "got testville:o_1"]


async def test_a_lock_connection_dropped_while_idle_is_replaced_at_once(
    two_processes: tuple[ResidentLocks, ResidentLocks], backend: str, db_url: str
) -> None:
    """The database dropped the idle lock connection (a restart, an idle timeout): the
    next message opens a new one and is locked as usual, not handled without it."""
    if backend == "sqlite":
        pytest.skip("advisory locks are PostgreSQL's")
    first, second = two_processes
    async with first("testville:o_9"):
        pass  # the lock connection is open and idle now
    admin = create_engine(db_url, pool_size=1)
    try:
        async with admin.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()
    events: list[str] = []
    async with first("testville:o_9"):
        waiting = asyncio.create_task(held_elsewhere(second, "testville:o_9", events))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "handled without the cross-process lock"
    await asyncio.wait_for(waiting, 2)
