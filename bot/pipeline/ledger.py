"""Exactly-once handling of inbound messages across retries, restarts and processes.

WeChat retries a message it got no answer to after about 5 s, three times, and a
retry may reach another process. Every message is therefore *claimed* in the
database before anything is done with it (see ``storage.repositories.ledger``):

* the claimant runs the handlers; the reply is recorded in the same transaction as
  everything the message did (see ``bot.pipeline``), and only by the attempt that
  still holds the claim (its owner token): an attempt whose claim was taken over
  commits nothing;
* a retry of a finished message gets the recorded reply again, or ``success`` when
  the reply went out through the customer-service API instead (it was late);
* a retry of a message still running waits for it, within its own time budget;
* a claim whose lease ran out (on the database's clock) without a reply or a
  deferral belongs to an attempt that died: a retry takes it over;
* a message answered ``success`` because it was slow (*deferred*) is stored with
  its claim; if its attempt dies or fails, :meth:`MessageLedger.take_deferred` hands
  it to whichever process runs it again.

Claims of concurrent messages are written in batches (group commit), and so are the
records of messages whose handlers wrote nothing (most of them: menus, questions).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from bot.clock import Clock, SystemClock
from bot.pipeline.batching import Batcher
from storage.batch import BatchDatabase
from storage.repositories import ledger as repo
from storage.repositories import outbox as outbox_repo
from storage.repositories import residents as residents_repo
from storage.repositories.ledger import ClaimLost, Deferred
from storage.repositories.states import StateConflict

__all__ = ["Claim", "ClaimLost", "Deferred", "LateReply", "MessageLedger", "Status"]

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
    token: str = ""
    """NEW: the owner token that fences this attempt (see ``finish_step``)."""


def new_token() -> str:
    return secrets.token_hex(16)


class MessageLedger:
    def __init__(
        self,
        db: BatchDatabase,
        community_id: str,
        *,
        lease: float,
        deferred_lease: float = 60.0,
        keep: dt.timedelta = dt.timedelta(days=1),
        poll_interval: float = 0.1,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._db = db
        self.community_id = community_id
        self._lease = dt.timedelta(seconds=lease)
        """How long a claim may go without a reply before a retry takes it over."""
        self._deferred_lease = dt.timedelta(seconds=deferred_lease)
        """How long a deferred message's attempt has before another runs it again."""
        self._keep = keep
        self._poll_interval = poll_interval
        # One transaction at a time writes the claims of many messages: SQLite allows
        # one writer, and writers queuing inside SQLite (its busy handler sleeps and
        # retries) cost far more than queuing here.
        # Claims and the records of messages whose handlers wrote nothing share one
        # batch, so one transaction at a time writes the ledger.
        self._writes: Batcher[str | _Finish, Claim | Exception | None] = Batcher(self._write_batch)
        self._running: dict[str, asyncio.Event] = {}
        """Messages this process is handling: a local retry waits on the event."""

    async def claim(self, key: str) -> Claim:
        if key in self._running:  # a retry racing its first attempt in this process
            return Claim(Status.RUNNING)
        claim = await self._writes.submit(key)
        assert isinstance(claim, Claim)
        if claim.status is Status.NEW:
            self._running[key] = asyncio.Event()
        return claim

    def finish_step(
        self, key: str, token: str, reply: str | None, *, resident: str | None
    ) -> Callable[[Connection], bool]:
        """The record of the reply, as a step of the message's unit of work.

        The step raises :class:`ClaimLost` if ``token`` no longer holds the claim, and
        returns True if the message was deferred (its reply must go out by the API).
        ``resident``: the openid of a resident who just interacted with us; their
        48-hour customer-service window is noted in the same transaction."""

        def step(connection: Connection) -> bool:
            deferred = repo.finish(connection, self.community_id, key, owner=token, reply=reply)
            if resident:
                residents_repo.touch_many(
                    connection, self.community_id, [resident], now=self._clock.now()
                )
            return deferred

        return step

    async def finish(
        self,
        key: str,
        token: str,
        reply: str | None,
        *,
        resident: str | None,
        also: Callable[[Connection], None] | None = None,
        late: LateReply | None = None,
    ) -> None:
        """Record the reply of a message whose handler wrote nothing, in a batch with
        other messages' (group commit): the same steps as :meth:`finish_step` plus
        ``also`` (the state's save) and, if the message was deferred, ``late`` as an
        outbox row, in a savepoint of their own so that one message's
        :class:`ClaimLost` or state conflict leaves the others' records alone."""
        outcome = await self._writes.submit(_Finish(key, token, reply, resident, also, late))
        if isinstance(outcome, Exception):
            raise outcome

    def finished(self, key: str) -> None:
        """The unit of work that recorded the reply committed (or gave up): a local
        retry waiting for it may look again."""
        self._forget(key)

    async def release(self, key: str, token: str, *, retry_in: float = 2.0) -> None:
        """Give up a claim whose handling failed before any reply (the database went
        away, the task was cancelled, the state changed meanwhile): WeChat's next retry
        may claim it afresh; a deferred message is run again in ``retry_in`` s."""
        self._forget(key)
        try:
            await self._db.run(
                lambda c: repo.release(
                    c,
                    self.community_id,
                    key,
                    owner=token,
                    now=repo.database_now(c),
                    retry_in=dt.timedelta(seconds=retry_in),
                )
            )
        except Exception:  # the lease runs out instead
            log.warning("could not release the claim on %s", key, exc_info=True)

    async def defer(self, key: str, token: str, payload: str) -> bool:
        """The answer was "success": the reply must not be given to a retry too, and the
        message is now ours alone to finish. False if it finished first."""
        return await self._db.run(
            lambda c: repo.defer(
                c,
                self.community_id,
                key,
                owner=token,
                payload=payload,
                now=repo.database_now(c),
                lease=self._deferred_lease,
            )
        )

    async def defer_for_owner(self, key: str, payload: str) -> bool:
        """A retry found another attempt still running at the end of its wait: store the
        message on that attempt's behalf (see ``repo.defer_for_owner``)."""
        return await self._db.run(
            lambda c: repo.defer_for_owner(c, self.community_id, key, payload=payload)
        )

    async def take_deferred(self, limit: int) -> list[Deferred]:
        """Deferred messages whose attempt died or failed, now held by this process."""
        owners = [new_token() for _ in range(limit)]
        taken = await self._db.run(
            lambda c: repo.take_deferred(
                c,
                self.community_id,
                owners=owners,
                now=repo.database_now(c),
                lease=self._deferred_lease,
            )
        )
        for message in taken:
            self._running.setdefault(message.key, asyncio.Event())
        return taken

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
        now = repo.database_now(connection)
        found = repo.entry(connection, self.community_id, key)
        token = new_token()
        if found is None:  # purged meanwhile (a day later): it is new again
            claimed = repo.claim_many(
                connection,
                self.community_id,
                {key: token},
                now=now,
                lease=self._lease,
                expires_at=self._clock.now() + self._keep,
            )
            if claimed.get(key) is None:
                return Claim(Status.NEW, token=token)
            return Claim(Status.RUNNING)
        if found.deferred:
            return Claim(Status.DEFERRED)
        if found.done:
            return Claim(Status.DONE, found.reply)
        if take_over and repo.take_over(
            connection, self.community_id, key, owner=token, now=now, lease=self._lease
        ):
            return Claim(Status.NEW, token=token)
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

    async def _write_batch(self, writes: list[str | _Finish]) -> list[Claim | Exception | None]:
        return await self._db.run(lambda c: self._write(c, writes))

    def _write(
        self, connection: Connection, writes: list[str | _Finish]
    ) -> list[Claim | Exception | None]:
        """Records first, then claims, in one transaction; results in request order."""
        finishes = [w for w in writes if isinstance(w, _Finish)]
        keys = [w for w in writes if isinstance(w, str)]
        recorded = iter(self._finish_many(connection, finishes) if finishes else [])
        claimed = iter(self._claim(connection, keys) if keys else [])
        return [next(recorded) if isinstance(w, _Finish) else next(claimed) for w in writes]

    def _finish_many(self, connection: Connection, items: list[_Finish]) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for item in items:
            try:
                with connection.begin_nested():
                    if item.also is not None:
                        item.also(connection)
                    record = self.finish_step(
                        item.key, item.token, item.reply, resident=item.resident
                    )
                    if record(connection) and item.late is not None:
                        outbox_repo.enqueue_row(
                            connection,
                            community_id=self.community_id,
                            key=item.late.key,
                            channel=item.late.channel,
                            target=item.late.openid,
                            payload={"text": item.late.text},
                        )
            except (ClaimLost, StateConflict) as lost:
                outcomes.append(lost)
            else:
                outcomes.append(None)
        return outcomes

    def _claim(self, connection: Connection, keys: list[str]) -> list[Claim]:
        """Claim a batch of messages in one transaction."""
        now = repo.database_now(connection)
        owners = {key: new_token() for key in dict.fromkeys(keys)}
        found = repo.claim_many(
            connection,
            self.community_id,
            owners,
            now=now,
            lease=self._lease,
            expires_at=self._clock.now() + self._keep,
        )
        results: list[Claim] = []
        seen: set[str] = set()
        for key in keys:
            existing = found.get(key)
            if key in seen:  # the same message twice in one batch: the first one owns it
                results.append(Claim(Status.RUNNING))
            elif existing is None:
                results.append(Claim(Status.NEW, token=owners[key]))
            elif existing.deferred:
                results.append(Claim(Status.DEFERRED))
            elif existing.done:
                results.append(Claim(Status.DONE, existing.reply))
            else:
                results.append(Claim(Status.RUNNING))
            seen.add(key)
        return results


@dataclass(frozen=True)
class LateReply:
    """The reply of a deferred message, as the outbox row that sends it."""

    key: str
    channel: str
    openid: str
    text: str


@dataclass(frozen=True)
class _Finish:
    key: str
    token: str
    reply: str | None
    resident: str | None
    also: Callable[[Connection], None] | None
    late: LateReply | None
