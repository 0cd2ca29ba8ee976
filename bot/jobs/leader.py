"""Which process runs the scheduler's periodic jobs: one at a time, handed over fast.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its
own. The others try for it every ``interval`` seconds; when the leader dies its
connection closes, PostgreSQL releases the lock, and the next try of another process
takes it. (Work claimed by the jobs is safe across processes anyway - rows are taken
with ``SKIP LOCKED`` - so a hand-over never duplicates; leadership keeps the polls
from multiplying.)

Leadership is per deployment, not per database: the lock is keyed by the set of
communities the process serves. Two deployments serving different communities on one
database each have a leader for their own (with one global lock, only the winner's
communities got reminders, notifications and broadcasts); processes of one deployment
share the key, so one of them leads.

On SQLite, the embedded single-process set-up, the process is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.locks import AdvisoryConnection

log = logging.getLogger(__name__)

LOCK_KEY = 0x6F6D5F6C  # "om_l": distinct from the migration lock


def scope_key(communities: Iterable[str]) -> int:
    """The second half of the lock's key: the communities served, as a 31-bit number."""
    return zlib.crc32(",".join(sorted(set(communities))).encode()) & 0x7FFFFFFF


class Leadership:
    def __init__(
        self, engine: AsyncEngine, *, interval: float = 2.0, scope: Iterable[str] = ()
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._scope = scope_key(scope)
        self._lock = AdvisoryConnection(engine)
        self._task: asyncio.Task[None] | None = None
        self._is_leader = engine.dialect.name != "postgresql"

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    async def start(self) -> None:
        if self._engine.dialect.name == "postgresql":
            await self._try()
            self._task = asyncio.create_task(self._keep_trying(), name="leader election")

    async def _keep_trying(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._try()
            except Exception:  # database trouble: not leader until the next try works
                log.warning("leader election: database unavailable", exc_info=True)
                await self._let_go()

    async def _try(self) -> None:
        if self._lock.is_open:  # open only while it holds the lock
            # Still leader? A closed or broken connection means the lock is gone.
            try:
                await self._lock.ping()
                return
            except Exception:
                await self._let_go()
        try:
            got = await self._lock.try_lock(LOCK_KEY, self._scope)
        except BaseException:
            await self._lock.close()
            raise
        if got:
            self._is_leader = True
            log.info("this process now runs the scheduled jobs")
        else:
            await self._lock.close()

    async def _let_go(self) -> None:
        was = self._is_leader
        self._is_leader = False
        await self._lock.close()
        if was:
            log.warning("this process no longer runs the scheduled jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._lock.unlock(LOCK_KEY, self._scope)
        await self._let_go()
