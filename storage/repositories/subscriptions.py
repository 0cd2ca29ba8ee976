"""Residents' subscriptions to campaign topics (反诈, 防溺水 …)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import insert_new
from storage.models import Subscription


async def subscribe(session: AsyncSession, resident_id: int, topics: Iterable[str]) -> None:
    rows = [{"resident_id": resident_id, "topic": t} for t in dict.fromkeys(topics)]
    if not rows:
        return
    await session.execute(insert_new(session, Subscription).values(rows))


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
