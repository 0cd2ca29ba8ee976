"""Resident remarks: emergencies, praise, complaints and outcomes, kept for staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import OrderEvent, ResidentRemark, Unit

LONGEST = 2000
"""Characters of the resident's words kept (a remark is a sentence, not an essay)."""


async def record_remark(
    session: AsyncSession,
    *,
    community_id: str,
    openid: str,
    message_key: str,
    kind: str,
    text: str,
    detail: str | None = None,
    unit_key: str | None = None,
    order_id: int | None = None,
) -> bool:
    """Keep a remark once per message and kind; True when this call recorded it (so the
    caller alerts staff once however often WeChat retries the message)."""
    unit_id = None
    if unit_key is not None:
        unit_id = await session.scalar(
            select(Unit.id).where(Unit.community_id == community_id, Unit.key == unit_key)
        )
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = (
        insert(ResidentRemark)
        .values(
            community_id=community_id,
            openid=openid,
            message_key=message_key,
            kind=kind,
            detail=detail,
            unit_id=unit_id,
            order_id=order_id,
            text=text[:LONGEST],
        )
        .on_conflict_do_nothing()
        .returning(ResidentRemark.id)
    )
    return (await session.scalar(statement)) is not None


@dataclass(frozen=True)
class RemarkRow:
    kind: str
    detail: str | None
    unit: str | None
    text: str
    created_at: dt.datetime


async def recent_remarks(
    session: AsyncSession, community_id: str, kinds: tuple[str, ...], *, limit: int = 50
) -> list[RemarkRow]:
    rows = await session.execute(
        select(
            ResidentRemark.kind,
            ResidentRemark.detail,
            Unit.name,
            ResidentRemark.text,
            ResidentRemark.created_at,
        )
        .outerjoin(Unit, ResidentRemark.unit_id == Unit.id)
        .where(ResidentRemark.community_id == community_id, ResidentRemark.kind.in_(kinds))
        .order_by(ResidentRemark.created_at.desc(), ResidentRemark.id.desc())
        .limit(limit)
    )
    return [RemarkRow(*row) for row in rows]


@dataclass(frozen=True)
class UnitVoices:
    unit: str
    praise: int
    complaints: int


async def voices_by_unit(session: AsyncSession, community_id: str) -> list[UnitVoices]:
    """Praise and complaints residents gave each unit in their own words (evidence for
    动态考评 beside the figures), most praised first."""
    counts: dict[str, dict[str, int]] = {}
    rows = await session.execute(
        select(Unit.name, ResidentRemark.kind, func.count(ResidentRemark.id))
        .join(Unit, ResidentRemark.unit_id == Unit.id)
        .where(
            ResidentRemark.community_id == community_id,
            ResidentRemark.kind.in_(("praise", "complaint")),
        )
        .group_by(Unit.name, ResidentRemark.kind)
    )
    for name, kind, count in rows:
        counts.setdefault(name, {})[kind] = count
    voices = [
        UnitVoices(name, kinds.get("praise", 0), kinds.get("complaint", 0))
        for name, kinds in counts.items()
    ]
    return sorted(voices, key=lambda v: (-v.praise, v.complaints, v.unit))


async def said_solved_since_completion(session: AsyncSession, order_id: int) -> bool:
    """Whether the resident said 解决了 about the order after its latest completion (the
    回访 reminder need not ask again)."""
    completed = (
        select(func.max(OrderEvent.at))
        .where(OrderEvent.order_id == order_id, OrderEvent.to_status == "completed")
        .scalar_subquery()
    )
    found = await session.scalar(
        select(ResidentRemark.id)
        .where(
            ResidentRemark.order_id == order_id,
            ResidentRemark.kind == "outcome",
            ResidentRemark.detail == "solved",
            ResidentRemark.created_at >= completed,
        )
        .limit(1)
    )
    return found is not None
