"""Records of who saw residents' personal information, written behind the page.

A page that only reads must answer at once even while a writer holds SQLite's write
lock (tests/test_busy_database.py), yet each view of a resident's phone, address or
photos must be recorded (个人信息保护法). So a view is put on a queue and written by
one background task, in batches; a busy or unreachable database delays the batch,
it is retried, never dropped. Each record is also logged at once (logger
``order_menu.access``), so a process killed before the queue reached the database
still leaves a trace. The queue is flushed when the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories.users import audit
from storage.types import utcnow

log = logging.getLogger("order_menu.access")

BATCH = 100
RETRY_AFTER = 1.0
"""Seconds before a batch the database refused is tried again."""
STOP_WAIT = 5.0
"""Seconds the queue is given to reach the database when the service stops."""


@dataclass(frozen=True)
class Access:
    community_id: str
    actor: str
    action: str
    target: str
    detail: str | None
    at: dt.datetime


class AccessLog:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._queue: asyncio.Queue[Access] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def record(
        self, community_id: str, actor: str, action: str, target: str, detail: str | None
    ) -> None:
        """Queue one record (and log it now); it reaches the audit log in a moment."""
        log.info("%s %s %s %s %s", community_id, actor, action, target, detail or "")
        self._queue.put_nowait(Access(community_id, actor, action, target, detail, utcnow()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_forever(), name="access log")

    async def stop(self) -> None:
        """Write what is queued (for at most STOP_WAIT seconds), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), STOP_WAIT)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._queue.empty():
            log.warning("%d access records not written at stop", self._queue.qsize())

    async def drained(self) -> None:
        """Until everything queued so far is in the audit log."""
        await self._queue.join()

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    async with self._sessionmaker.begin() as session:
                        for a in batch:
                            await audit(
                                session,
                                a.community_id,
                                a.actor,
                                a.action,
                                a.target,
                                a.detail,
                                at=a.at,
                            )
                    break
                except Exception as exc:  # busy or away: the same batch again shortly
                    log.warning("access records not written yet (%s); retrying", exc)
                    await asyncio.sleep(RETRY_AFTER)
            for _ in batch:
                self._queue.task_done()
