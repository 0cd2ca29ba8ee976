"""Reminders are rows: due times indexed, fired once, polled in batches.

``schedule`` runs in the caller's transaction (with the order change behind it); its
key makes scheduling idempotent. ``claim_due`` locks a batch of due rows for the
caller's transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL): the caller acts on
them and marks them in that same transaction, so a reminder fires exactly once even
if the process dies half-way (the transaction rolls back and the rows stay due).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.claims import claimable
from storage.engine import dialect_name
from storage.models import Reminder


async def schedule(
    session: AsyncSession,
    *,
    community_id: str,
    key: str,
    kind: str,
    due_at: dt.datetime,
    order_id: int | None = None,
    note: str | None = None,
) -> None:
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    await session.execute(
        insert(Reminder)
        .values(
            community_id=community_id,
            key=key,
            kind=kind,
            order_id=order_id,
            due_at=due_at,
            status="pending",
            note=note,
        )
        .on_conflict_do_nothing(index_elements=[Reminder.key])
    )


async def schedule_many(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Bulk scheduling (one executemany): for imports and benchmarks."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    connection = await session.connection()
    await connection.execute(
        insert(Reminder).on_conflict_do_nothing(index_elements=[Reminder.key]),
        [{"status": "pending", "order_id": None, **row} for row in rows],
    )


async def claim_due(
    session: AsyncSession,
    *,
    now: dt.datetime,
    limit: int,
    communities: Collection[str] | None = None,
) -> list[Reminder]:
    """Due reminders (of ``communities`` only, when given: a process leaves alone the
    rows of a community it does not serve)."""
    query = (
        select(Reminder)
        .where(Reminder.status == "pending", Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
    )
    if communities is not None:
        query = query.where(Reminder.community_id.in_(communities))
    query = claimable(query, dialect_name(session))
    return list((await session.scalars(query)).all())


async def fail(
    session: AsyncSession, failures: Sequence[tuple[int, str]], *, now: dt.datetime
) -> None:
    """Set aside reminders that could not be acted on, with the reason."""
    for reminder_id, error in failures:
        await session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id)
            .values(status="failed", fired_at=now, error=error[:1000])
        )


async def finish(
    session: AsyncSession, reminder_ids: Sequence[int], status: str, *, now: dt.datetime
) -> None:
    if reminder_ids:
        await session.execute(
            update(Reminder)
            .where(Reminder.id.in_(list(reminder_ids)))
            .values(status=status, fired_at=now)
        )
