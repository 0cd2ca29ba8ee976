"""Resident remarks: emergencies, praise, complaints and outcomes, kept for staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import ResidentRemark, Unit

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


async def praise_by_unit(
    session: AsyncSession, community_id: str, *, since: dt.datetime | None = None
) -> dict[str, int]:
    """Praise residents gave each unit (by unit key): evidence for 动态考评."""
    query = (
        select(Unit.key, func.count(ResidentRemark.id))
        .join(Unit, ResidentRemark.unit_id == Unit.id)
        .where(ResidentRemark.community_id == community_id, ResidentRemark.kind == "praise")
        .group_by(Unit.key)
    )
    if since is not None:
        query = query.where(ResidentRemark.created_at >= since)
    return {key: count for key, count in await session.execute(query)}
