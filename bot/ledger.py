"""Exactly-once handling of inbound messages across retries, restarts and processes.

WeChat retries a message it got no answer to after about 5 s, three times, and a
retry may reach another process. Every message is therefore *claimed* in the
database before anything is done with it (see ``storage.repositories.ledger``):

* the claimant runs the handlers and records the reply;
* a retry of a finished message gets the recorded reply again, or ``success`` when
  the reply went out through the customer-service API instead (it was late);
* a retry of a message still running waits for it, within its own time budget;
* a claim that neither finished nor was deferred within the lease belongs to an
  attempt that died (a crash, a killed process): a retry takes it over.

Claims and replies of concurrent messages are written in batches (group commit).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from bot.batching import Batcher
from bot.clock import Clock, SystemClock
from storage.batch import BatchDatabase
from storage.repositories import ledger as repo
from storage.repositories import residents as residents_repo

log = logging.getLogger(__name__)


class Status(enum.Enum):
    NEW = "new"
    """This attempt owns the message: handle it."""
    RUNNING = "running"
    """Another attempt is handling it now."""
    DONE = "done"
    """Handled; ``reply`` is what was answered (None: "success")."""
    DEFERRED = "deferred"
    """Answered "success"; the reply goes (or went) out through the API."""


@dataclass(frozen=True)
class Claim:
    status: Status
    reply: str | None = None


class MessageLedger:
    def __init__(
        self,
        db: BatchDatabase,
        community_id: str,
        *,
        lease: float,
        keep: dt.timedelta = dt.timedelta(days=1),
        poll_interval: float = 0.1,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._db = db
        self._community_id = community_id
        self._lease = dt.timedelta(seconds=lease)
        self._keep = keep
        self._poll_interval = poll_interval
        # Claims and replies share one batch, so one transaction at a time writes
        # the ledger: SQLite allows one writer, and writers queuing inside SQLite
        # (its busy handler sleeps and retries) cost far more than queuing here.
        self._writes: Batcher[_Write, Claim | None] = Batcher(self._write_batch)
        self._running: dict[str, asyncio.Event] = {}
        """Messages this process is handling: a local retry waits on the event."""

    async def claim(self, key: str) -> Claim:
        if key in self._running:  # a retry racing its first attempt in this process
            return Claim(Status.RUNNING)
        claim = await self._writes.submit(_Write(key))
        assert claim is not None
        if claim.status is Status.NEW:
            self._running[key] = asyncio.Event()
        return claim

    async def finish(
        self,
        key: str,
        reply: str | None,
        *,
        resident: str | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Record the reply; from now on a retry gets this reply.

        ``resident``: the openid of a resident who just interacted with us; their
        48-hour customer-service window is noted in the same transaction.
        ``also``: another write that must be kept if and only if the reply is (the
        conversation's new state).
        """
        try:
            await self._writes.submit(
                _Write(key, finished=True, reply=reply, resident=resident, also=also)
            )
        finally:
            self._forget(key)

    async def release(self, key: str) -> None:
        """Give up a claim whose handling failed before any reply (the database went
        away, the task was cancelled): WeChat's next retry may then claim it afresh."""
        self._forget(key)
        try:
            await self._db.run(lambda c: repo.drop_claim(c, self._community_id, key))
        except Exception:  # the lease runs out instead
            log.warning("could not release the claim on %s", key, exc_info=True)

    async def defer(self, key: str) -> None:
        """The answer was "success": the reply must not be given to a retry too."""
        await self._db.run(lambda c: repo.mark_deferred(c, self._community_id, key))

    async def wait(self, key: str, budget: float) -> Claim:
        """Wait (at most ``budget`` seconds) for another attempt; take the message over
        if that attempt is dead. Returns RUNNING if it is still going at the end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        while True:
            event = self._running.get(key)
            if event is not None:
                try:
                    await asyncio.wait_for(event.wait(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    return Claim(Status.RUNNING)
            check = functools.partial(self._check, key=key, take_over=key not in self._running)
            claim = await self._db.run(check)
            if claim.status is Status.NEW:
                self._running[key] = asyncio.Event()
            if claim.status is not Status.RUNNING or loop.time() >= deadline:
                return claim
            await asyncio.sleep(min(self._poll_interval, max(deadline - loop.time(), 0)))

    def _check(self, connection: Connection, key: str, *, take_over: bool) -> Claim:
        """Where another attempt of ``key`` stands; NEW if this caller took it over."""
        now = self._clock.now()
        found = repo.entry(connection, self._community_id, key)
        if found is None:  # purged meanwhile (a day later): it is new again
            claimed = repo.claim_many(
                connection, self._community_id, [key], now=now, expires_at=now + self._keep
            )
            return Claim(Status.NEW if claimed.get(key) is None else Status.RUNNING)
        if found.deferred:
            return Claim(Status.DEFERRED)
        if found.done:
            return Claim(Status.DONE, found.reply)
        stale_before = now - self._lease
        if take_over and repo.take_over(
            connection, self._community_id, key, now=now, stale_before=stale_before
        ):
            return Claim(Status.NEW)
        return Claim(Status.RUNNING)

    def _forget(self, key: str) -> None:
        event = self._running.pop(key, None)
        if event is not None:
            event.set()

    async def purge(self) -> int:
        """Forget messages older than ``keep`` (WeChat stopped retrying them long ago)."""
        return await self._db.run(lambda c: repo.purge_expired(c, now=self._clock.now()))

    async def close(self) -> None:
        await self._writes.close()

    # --- batches ---------------------------------------------------------------------

    async def _write_batch(self, writes: list[_Write]) -> list[Claim | None]:
        return await self._db.run(lambda c: self._write(c, writes))

    def _write(self, connection: Connection, writes: list[_Write]) -> list[Claim | None]:
        """Record replies, then make claims, in one transaction."""
        now = self._clock.now()
        finished = [w for w in writes if w.finished]
        claims = [w.key for w in writes if not w.finished]
        if finished:
            for write in finished:
                if write.also is not None:
                    write.also(connection)
            repo.finish_many(connection, self._community_id, [(w.key, w.reply) for w in finished])
            residents = [w.resident for w in finished if w.resident]
            residents_repo.touch_many(connection, self._community_id, residents, now=now)
        found = (
            repo.claim_many(
                connection, self._community_id, claims, now=now, expires_at=now + self._keep
            )
            if claims
            else {}
        )
        results: list[Claim | None] = []
        seen: set[str] = set()
        for write in writes:
            if write.finished:
                results.append(None)
                continue
            key = write.key
            existing = found.get(key)
            if key in seen:  # the same message twice in one batch: the first one owns it
                results.append(Claim(Status.RUNNING))
            elif existing is None:
                results.append(Claim(Status.NEW))
            elif existing.deferred:
                results.append(Claim(Status.DEFERRED))
            elif existing.done:
                results.append(Claim(Status.DONE, existing.reply))
            else:
                results.append(Claim(Status.RUNNING))
            seen.add(key)
        return results


@dataclass(frozen=True)
class _Write:
    """A claim of ``key``, or (``finished``) the record of its reply."""

    key: str
    finished: bool = False
    reply: str | None = None
    resident: str | None = None
    also: Callable[[Connection], None] | None = None
