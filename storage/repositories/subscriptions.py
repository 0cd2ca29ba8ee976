"""Residents' subscriptions to campaign topics (反诈, 防溺水 …)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import Subscription


async def subscribe(session: AsyncSession, resident_id: int, topics: Iterable[str]) -> None:
    rows = [{"resident_id": resident_id, "topic": t} for t in dict.fromkeys(topics)]
    if not rows:
        return
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    await session.execute(insert(Subscription).values(rows).on_conflict_do_nothing())


async def unsubscribe(
    session: AsyncSession, resident_id: int, topics: Iterable[str] | None = None
) -> None:
    """Stop the given topics, or all of them (None)."""
    statement = delete(Subscription).where(Subscription.resident_id == resident_id)
    if topics is not None:
        statement = statement.where(Subscription.topic.in_(list(topics)))
    await session.execute(statement)


async def topics_of(session: AsyncSession, resident_id: int) -> set[str]:
    return set(
        await session.scalars(
            select(Subscription.topic).where(Subscription.resident_id == resident_id)
        )
    )
