"""Unmet needs (需求清单): what residents asked for that the catalog does not offer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.matcher import WINDOW, MatchResult
from catalog.normalize import normalize
from storage.engine import dialect_name
from storage.models import UnmetNeed


@dataclass(frozen=True)
class NeedRow:
    text: str
    openid: str | None
    created_at: dt.datetime
    closest: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "openid": self.openid,
            "created_at": self.created_at.isoformat(),
            "closest": self.closest,
        }


async def record_unmet_need(
    session: AsyncSession,
    *,
    community_id: str,
    result: MatchResult,
    catalog_version: str,
    openid: str | None = None,
    message_key: str | None = None,
) -> None:
    """Store a message that matched nothing; a retried message (same key) is stored once."""
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert(UnmetNeed).values(
        community_id=community_id,
        openid=openid,
        message_key=message_key,
        text=result.text,
        # As far as the matcher reads it: the console groups needs by their first
        # words, and NFKC of a whole pasted text can take seconds.
        normalized=normalize(result.text[:WINDOW]),
        candidates=[{"item": c.item, "score": round(c.score, 4)} for c in result.candidates],
        catalog_version=catalog_version,
    )
    await session.execute(statement.on_conflict_do_nothing())


async def list_unmet_needs(
    session: AsyncSession, *, community_id: str | None = None, limit: int = 100
) -> list[NeedRow]:
    query = (
        select(UnmetNeed)
        .where(UnmetNeed.text != "")  # erased or past its period
        .order_by(UnmetNeed.created_at.desc(), UnmetNeed.id.desc())
        .limit(limit)
    )
    if community_id is not None:
        query = query.where(UnmetNeed.community_id == community_id)
    return [
        NeedRow(
            text=need.text,
            openid=need.openid,
            created_at=need.created_at,
            closest=[c["item"] for c in need.candidates],
        )
        for need in await session.scalars(query)
    ]
