"""The outbox: notifications written with the change behind them, delivered after.

``enqueue`` runs in the caller's transaction, so an order change and the messages it
causes are saved together or not at all; its key makes a second enqueue of the same
notification a no-op. ``claim_due`` hands rows to one worker at a time: it moves
their next attempt a lease ahead and counts the attempt (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several processes share the work without overlap). The worker keeps
its claim alive with :func:`renew` while it works, so the lease only has to outlast a
worker that stopped, not the slowest batch.

Statuses: ``pending`` (due at ``next_attempt_at``), ``sending`` (being sent now, on a
channel that must not send twice, see below), ``sent``, ``failed`` (given up, for
staff), and ``unknown``: sent, but no clear answer came back, so it may have arrived;
it is not sent again.

A claimed row stays ``pending`` until its own attempt begins: :func:`start_attempt`,
in a short transaction of its own just before the send, checks that the claim is
still this worker's (its ``attempts`` is the one the claim set; another worker's
claim would have counted one more) and, on an at-most-once channel, marks it
``sending``. So a worker that stops (shutdown, SIGKILL, OOM, a database error out of
the batch) leaves the rows it had not tried yet ``pending``, and they are sent after
the lease; only a row it was sending, and may have sent, is ``sending``, and that one
is settled as ``unknown`` when the lease runs out (:func:`settle_abandoned`), never
sent again. A row of a channel whose receiver dedupes by the key stays ``pending``
while it is sent, and a dead worker's row is simply claimed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.claims import claimable
from storage.engine import dialect_name
from storage.models import OutboxMessage
from storage.types import utcnow

ABANDONED = "the worker stopped while sending: it may have arrived, not sent again"
"""``last_error`` of a row settled as ``unknown`` after its worker died mid-send."""


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    community_id: str
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int


def _enqueue_statement(
    dialect: str,
    *,
    community_id: str,
    key: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
    not_before: dt.datetime | None,
    order_id: int | None,
) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    return (
        insert(OutboxMessage)
        .values(
            community_id=community_id,
            key=key,
            channel=channel,
            target=target,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
            order_id=order_id,
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
        .returning(OutboxMessage.id)
    )


async def enqueue(
    session: AsyncSession,
    *,
    community_id: str,
    key: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
    not_before: dt.datetime | None = None,
    order_id: int | None = None,
) -> bool:
    """Whether the row is new (False: a notification with this key was enqueued
    before, and this one is dropped)."""
    statement = _enqueue_statement(
        dialect_name(session),
        community_id=community_id,
        key=key,
        channel=channel,
        target=target,
        payload=payload,
        not_before=not_before,
        order_id=order_id,
    )
    return await session.scalar(statement) is not None


def enqueue_row(
    connection: Connection,
    *,
    community_id: str,
    key: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
) -> bool:
    """:func:`enqueue` for a plain ``Connection`` (the ledger's batches)."""
    statement = _enqueue_statement(
        connection.dialect.name,
        community_id=community_id,
        key=key,
        channel=channel,
        target=target,
        payload=payload,
        not_before=None,
        order_id=None,
    )
    return connection.execute(statement).scalar() is not None


async def claim_due(
    session: AsyncSession,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int = 100,
    communities: Collection[str] | None = None,
) -> list[Claimed]:
    """Due notifications (of ``communities`` only, when given: a process leaves alone
    the rows of a community it does not serve), moved a lease ahead, their attempt
    counted. They stay ``pending``: see :func:`start_attempt`."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if communities is not None:
        due = due.where(OutboxMessage.community_id.in_(communities))
    due = claimable(due, dialect_name(session))
    rows = await session.execute(
        update(OutboxMessage)
        # Only the id here: conditions on the outer UPDATE too let PostgreSQL plan the
        # LIMITed subquery as the inner side of a join and run it again per row,
        # claiming the whole backlog instead of one batch.
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(
            OutboxMessage.id,
            OutboxMessage.key,
            OutboxMessage.community_id,
            OutboxMessage.channel,
            OutboxMessage.target,
            OutboxMessage.payload,
            OutboxMessage.attempts,
        )
    )
    # RETURNING keeps no order: in the order they were written (a recipient's messages
    # go out in that order).
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def _still_claimed(message: Claimed) -> ColumnElement[bool]:
    """The row is still held by the claim that returned ``message``: nobody claimed it
    since (that would have counted another attempt) and no outcome is recorded yet."""
    return and_(
        OutboxMessage.id == message.id,
        OutboxMessage.attempts == message.attempts,
        OutboxMessage.status.in_(("pending", "sending")),
    )


async def start_attempt(
    session: AsyncSession, message: Claimed, *, until: dt.datetime, at_most_once: bool
) -> bool:
    """Just before ``message`` is sent: whether it is still this worker's to send.

    If so its lease is renewed to ``until`` and, when it must not be sent twice
    (``at_most_once``), it becomes ``sending``: from now on a worker that stops leaves
    it ``unknown``, not ``pending``. False when another worker claimed it meanwhile
    (this worker's lease had run out): it must not be sent here.
    """
    values: dict[str, Any] = {"next_attempt_at": until}
    if at_most_once:
        values["status"] = "sending"
    result = await session.execute(
        update(OutboxMessage)
        .where(_still_claimed(message), OutboxMessage.status == "pending")
        .values(values)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def renew(session: AsyncSession, messages: Collection[Claimed], *, until: dt.datetime) -> int:
    """Keep the claim on ``messages`` (those still held, pending or being sent) until
    ``until``: the worker is alive and still at it. How many were renewed."""
    if not messages:
        return 0
    result = await session.execute(
        update(OutboxMessage)
        .where(or_(*(_still_claimed(message) for message in messages)))
        .values(next_attempt_at=until)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def postpone(
    session: AsyncSession, messages: Collection[Claimed], *, until: dt.datetime
) -> None:
    """Claimed rows not tried now: due again at ``until`` (their attempt not counted).
    Rows another worker claimed meanwhile are left to it."""
    if not messages:
        return
    await session.execute(
        update(OutboxMessage)
        .where(or_(*(_still_claimed(message) for message in messages)))
        .values(status="pending", next_attempt_at=until, attempts=OutboxMessage.attempts - 1)
    )


async def settle_abandoned(session: AsyncSession, *, now: dt.datetime) -> int:
    """Rows left ``sending`` past their lease: their worker stopped renewing it (it
    died) while sending, and the message may have arrived. They become ``unknown``
    and are not sent again."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.next_attempt_at <= now)
        .values(status="unknown", last_error=ABANDONED, cause="abandoned")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_sent(session: AsyncSession, message_id: int, *, now: dt.datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="sent", sent_at=now, last_error=None, cause=None)
    )


async def mark_failed(
    session: AsyncSession,
    message_id: int,
    error: str,
    *,
    retry_at: dt.datetime | None,
    cause: str = "gave_up",
) -> None:
    """Record a failed attempt that certainly did not arrive: retry at ``retry_at``,
    or give up (None) for ``cause`` (``bot.jobs.failures.CAUSES``)."""
    values: dict[str, Any] = {"last_error": error[:1000]}
    if retry_at is None:
        values["status"] = "failed"
        values["cause"] = cause[:64]
    else:
        values["status"] = "pending"
        values["next_attempt_at"] = retry_at
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(values)
    )


async def mark_unknown(session: AsyncSession, message_id: int, error: str) -> None:
    """Sent, and no clear answer: it may have arrived. Kept for staff, not sent again."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="unknown", last_error=error[:1000], cause="unknown")
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: int(n) for status, n in rows}
