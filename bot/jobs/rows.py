"""Rows acted on in the transaction that claims them: each exactly once, each alone.

A :class:`RowJob` is work kept as rows with a due time (reminders, waiting-list holds).
One run takes batch after batch until nothing is due; each batch is one transaction:

1. **claim** the due rows (``storage.claims.claimable``: ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so two processes take different rows; on SQLite the transaction holds
   the one write lock from its ``BEGIN IMMEDIATE``, so a second claim waits and then
   sees the first one's outcome);
2. **prepare** what the batch needs in a few queries (the orders of a batch of
   reminders), in a savepoint; if that fails, each row is prepared on its own below;
3. **act** on each row in a savepoint of its own. A row that raises has its effects
   undone, is recorded as failed with its error (by :meth:`RowJob.settle`: marked
   failed for staff, or set aside to be retried later), and the rest of the batch
   goes on: one bad row never blocks the queue. An error of the database itself is
   not the row's fault: the batch is rolled back whole and its rows stay due;
4. **settle**: the outcomes are written, and the transaction commits the effects and
   the outcomes together. A process that dies half-way commits nothing: the rows are
   still due for the next run, in this process or another. So each fires once.

Because the claim is safe across processes, a RowJob runs in every process
(``JobQueue.every`` without ``leader_only``).
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.errors import database_unavailable

log = logging.getLogger(__name__)

R = TypeVar("R")
P = TypeVar("P")


@dataclass
class Outcomes(Generic[R]):
    """What became of a batch's rows."""

    done: list[R] = field(default_factory=list)
    skipped: list[R] = field(default_factory=list)
    """No longer relevant when they came due."""
    failed: list[tuple[R, str]] = field(default_factory=list)
    """With the error, ``"Type: message"``."""


def error_text(exc: BaseException) -> str:
    """How a row's error is stored for staff."""
    return f"{type(exc).__name__}: {exc}"


class RowJob(abc.ABC, Generic[R, P]):
    """A queue of rows acted on in the transaction that claims them (module docstring).

    ``R`` is a claimed row, ``P`` what :meth:`prepare` loads for a batch."""

    what: ClassVar[str]
    """What a row is, for the log ("reminder")."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, *, batch: int
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._batch = batch

    @abc.abstractmethod
    async def claim(self, session: AsyncSession, now: dt.datetime, limit: int) -> Sequence[R]:
        """Up to ``limit`` due rows, locked for this transaction (see the module
        docstring); none that another worker holds."""

    @abc.abstractmethod
    async def prepare(self, session: AsyncSession, rows: Sequence[R], now: dt.datetime) -> P:
        """What acting on ``rows`` needs, loaded at once."""

    @abc.abstractmethod
    async def act(self, session: AsyncSession, row: R, prepared: P, now: dt.datetime) -> bool:
        """Act on one row (in its own savepoint); False if it was no longer relevant."""

    @abc.abstractmethod
    async def settle(self, session: AsyncSession, outcomes: Outcomes[R], now: dt.datetime) -> None:
        """Record the outcomes, in the transaction of the effects."""

    def label(self, row: R) -> str:
        """A row, for the log."""
        return str(getattr(row, "id", row))

    async def run_once(self) -> int:
        """Act on everything due now, a batch per transaction; how many rows."""
        total = 0
        while True:
            handled = await self._run_batch()
            total += handled
            if handled < self._batch:
                return total

    async def _run_batch(self) -> int:
        now = self._clock.now()
        outcomes: Outcomes[R] = Outcomes()
        async with self._sessionmaker.begin() as session:
            rows = await self.claim(session, now, self._batch)
            if not rows:
                return 0
            prepared: P | None = None
            try:
                async with session.begin_nested():
                    prepared = await self.prepare(session, rows, now)
                together = True
            except Exception as exc:
                if database_unavailable(exc):
                    raise
                log.warning(
                    "%ss: preparing a batch of %d failed (%s); one row at a time",
                    self.what,
                    len(rows),
                    error_text(exc),
                )
                together = False
            for row in rows:
                try:
                    async with session.begin_nested():
                        mine = (
                            cast(P, prepared)
                            if together
                            else await self.prepare(session, [row], now)
                        )
                        relevant = await self.act(session, row, mine, now)
                except Exception as exc:
                    if database_unavailable(exc):
                        raise  # not this row's fault: the batch is retried whole
                    log.exception("%s %s failed", self.what, self.label(row))
                    outcomes.failed.append((row, error_text(exc)))
                    continue
                (outcomes.done if relevant else outcomes.skipped).append(row)
            await self.settle(session, outcomes, now)
        log.info(
            "%ss: %d done, %d no longer relevant, %d failed",
            self.what,
            len(outcomes.done),
            len(outcomes.skipped),
            len(outcomes.failed),
        )
        return len(rows)
