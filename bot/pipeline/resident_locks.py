"""One resident's messages handled one at a time, across every process.

WeChat delivers a resident's messages to one URL; behind ``serve --workers N`` the
kernel may hand two of them to two processes. Both would read the same conversation
state and the later save would undo the earlier one (an answer forgotten, a question
asked twice). So the webhook takes the resident's lock *before* it reads the state:

1. an in-process :class:`~bot.locks.KeyedLocks` lock: messages of one resident in
   one process queue in arrival order, and only the first of them goes on to
2. a PostgreSQL advisory lock on the resident, held on a connection kept for locks.
   ``pg_try_advisory_lock`` is polled (briefly) rather than waited on, so that one
   lock connection serves every resident: a blocked wait would stall it for all.

Locks are spread over a few connections by key (the same key always on the same
connection, which is where it must be unlocked). If a lock connection breaks (the
database restarted), its locks are gone with it; a new connection is opened at
once, and only if that fails too is the message handled with the in-process lock
alone. Waiting is bounded too: a lock held for longer than ``max_wait`` (a stuck
process) is skipped, with a warning, rather than leaving the message unanswered.

On SQLite (one process) the in-process lock is all there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.locks import AdvisoryConnection, KeyedLocks

log = logging.getLogger(__name__)

LOCK_CLASS = 0x6F6D72  # "omr": the two-key form of advisory locks, apart from the leader's


def lock_key(key: str) -> int:
    """A signed 32-bit number for ``key`` (a collision only makes two residents wait
    for each other)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


class ResidentLocks:
    """``async with locks(key):`` one holder of ``key`` at a time in every process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        connections: int = 2,
        poll: float = 0.02,
        max_wait: float = 30.0,
    ) -> None:
        self._local = KeyedLocks()
        self._shared = (
            [AdvisoryConnection(engine) for _ in range(connections)]
            if engine.dialect.name == "postgresql"
            else []
        )
        self._poll = poll
        self._max_wait = max_wait

    @contextlib.asynccontextmanager
    async def __call__(self, key: str, *, max_wait: float | None = None) -> AsyncIterator[None]:
        """Hold ``key``'s lock in every process; ``max_wait`` (else the default, see
        the class) bounds each of the two waits, after which the caller goes on
        without the lock. The database lock is polled, never waited on in a query, so
        a bounded wait never cancels a query on the shared lock connection."""
        async with self._local(key, max_wait=max_wait):
            if not self._shared:
                yield
                return
            number = lock_key(key)
            connection = self._shared[number % len(self._shared)]
            held = await self._acquire(connection, number, max_wait)
            try:
                yield
            finally:
                if held:
                    try:
                        await connection.unlock(LOCK_CLASS, number)
                    except Exception:
                        log.warning("resident lock: could not unlock (connection lost)")

    async def _acquire(
        self, connection: AdvisoryConnection, number: int, max_wait: float | None
    ) -> bool:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + (self._max_wait if max_wait is None else max_wait)
        delay = self._poll
        reconnected = False
        while True:
            try:
                if await connection.try_lock(LOCK_CLASS, number):
                    return True
            except Exception as exc:
                await connection.close()
                if not reconnected:  # a connection the database dropped: a new one
                    reconnected = True
                    continue
                log.warning("resident lock unavailable (%s): handling without it", exc)
                return False
            if loop.time() >= give_up:
                log.warning("resident lock held too long elsewhere: going on without it")
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    def __len__(self) -> int:
        return len(self._local)

    async def close(self) -> None:
        for connection in self._shared:
            await connection.close()
