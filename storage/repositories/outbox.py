"""The outbox: notifications written with the change behind them, delivered after.

``enqueue`` runs in the caller's transaction, so an order change and the messages it
causes are saved together or not at all; its key makes a second enqueue of the same
notification a no-op. ``claim_due`` hands rows to one worker at a time: it moves
their next attempt a lease ahead (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several processes share the work without overlap).

Statuses: ``pending`` (due at ``next_attempt_at``), ``sending`` (claimed on a channel
that must not send twice, see below), ``sent``, ``failed`` (given up, for staff), and
``unknown``: sent, but no clear answer came back, so it may have arrived; it is not
sent again. A row of an at-most-once channel is claimed as ``sending``, never
re-claimed, and settled as ``unknown`` if its lease runs out (the worker died while
sending); a row of a channel whose receiver dedupes by the key stays ``pending`` while
claimed, and a dead worker's row is simply claimed again when its lease ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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


async def enqueue(
    session: AsyncSession,
    *,
    community_id: str,
    key: str,
    channel: str,
    target: str,
    payload: dict[str, Any],
    not_before: dt.datetime | None = None,
) -> None:
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    now = utcnow()
    await session.execute(
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
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
    )


async def claim_due(
    session: AsyncSession,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int = 100,
    communities: Collection[str] | None = None,
    at_most_once: Collection[str] = (),
) -> list[Claimed]:
    """Due notifications (of ``communities`` only, when given: a process leaves alone
    the rows of a community it does not serve), moved a lease ahead; those of the
    ``at_most_once`` channels are marked ``sending``."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if communities is not None:
        due = due.where(OutboxMessage.community_id.in_(communities))
    if dialect_name(session) == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(
            next_attempt_at=now + lease,
            attempts=OutboxMessage.attempts + 1,
            status=case(
                (OutboxMessage.channel.in_(list(at_most_once)), "sending"),
                else_=OutboxMessage.status,
            ),
        )
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


async def postpone(session: AsyncSession, message_ids: list[int], *, until: dt.datetime) -> None:
    """Claimed rows not tried now: due again at ``until`` (their attempt not counted)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids))
        .values(status="pending", next_attempt_at=until, attempts=OutboxMessage.attempts - 1)
    )


async def settle_abandoned(session: AsyncSession, *, now: dt.datetime) -> int:
    """Rows left ``sending`` past their lease: the worker died while sending, and
    the message may have arrived. They become ``unknown`` and are not sent again."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.next_attempt_at <= now)
        .values(status="unknown", last_error=ABANDONED)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_sent(session: AsyncSession, message_id: int, *, now: dt.datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="sent", sent_at=now, last_error=None)
    )


async def mark_failed(
    session: AsyncSession, message_id: int, error: str, *, retry_at: dt.datetime | None
) -> None:
    """Record a failed attempt that certainly did not arrive: retry at ``retry_at``,
    or give up (None)."""
    values: dict[str, Any] = {"last_error": error[:1000]}
    if retry_at is None:
        values["status"] = "failed"
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
        .values(status="unknown", last_error=error[:1000])
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: int(n) for status, n in rows}
