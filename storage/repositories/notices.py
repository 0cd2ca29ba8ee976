"""Notices staff publish (停水, 停电 …) and the residents they answered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.notices import NoticeFacts
from storage.models import Notice, NoticeAnswer


def facts(row: Notice) -> NoticeFacts:
    return NoticeFacts(
        text=row.text,
        grid_key=row.grid_key,
        building=row.building,
        keywords=tuple(row.keywords or ()),
        item_key=row.item_key,
    )


async def live(session: AsyncSession, community_id: str, now: dt.datetime) -> Sequence[Notice]:
    """Notices in force now, newest first."""
    rows = await session.scalars(
        select(Notice)
        .where(
            Notice.community_id == community_id,
            Notice.ends_at > now,
            Notice.starts_at <= now,
            Notice.withdrawn_at.is_(None),
        )
        .order_by(Notice.id.desc())
    )
    return rows.all()


async def already_told(
    session: AsyncSession, resident_id: int, notice_ids: Sequence[int]
) -> set[int]:
    if not notice_ids:
        return set()
    told = await session.scalars(
        select(NoticeAnswer.notice_id).where(
            NoticeAnswer.resident_id == resident_id, NoticeAnswer.notice_id.in_(notice_ids)
        )
    )
    return set(told)


async def told(session: AsyncSession, resident_id: int, notice_ids: Sequence[int]) -> None:
    for notice_id in notice_ids:
        session.add(NoticeAnswer(notice_id=notice_id, resident_id=resident_id))
    await session.flush()


async def reported_anyway(
    session: AsyncSession, resident_id: int, notice_ids: Sequence[int]
) -> None:
    if notice_ids:
        await session.execute(
            update(NoticeAnswer)
            .where(NoticeAnswer.resident_id == resident_id, NoticeAnswer.notice_id.in_(notice_ids))
            .values(reported=True)
        )


@dataclass(frozen=True)
class Listed:
    row: Notice
    answered: int
    """Residents answered with it."""
    reported: int
    """Of them, those who still reported the problem."""


async def recent(session: AsyncSession, community_id: str, limit: int = 50) -> list[Listed]:
    rows = (
        await session.scalars(
            select(Notice)
            .where(Notice.community_id == community_id)
            .order_by(Notice.id.desc())
            .limit(limit)
        )
    ).all()
    counts: dict[int, tuple[int, int]] = {}
    if rows:
        found = await session.execute(
            select(
                NoticeAnswer.notice_id,
                func.count(),
                func.count().filter(NoticeAnswer.reported.is_(True)),
            )
            .where(NoticeAnswer.notice_id.in_([r.id for r in rows]))
            .group_by(NoticeAnswer.notice_id)
        )
        counts = {n: (a, r) for n, a, r in found.all()}
    return [Listed(r, *counts.get(r.id, (0, 0))) for r in rows]
