"""Conversation states, read for many residents at once and written one by one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import ConversationState

StateRow = tuple[str | None, dict[str, Any], dt.datetime | None]
"""state, data, expires_at"""


async def load_many(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StateRow]:
    """States of (community_id, openid) pairs; pairs without one are absent."""
    rows = await session.execute(
        select(
            ConversationState.community_id,
            ConversationState.openid,
            ConversationState.state,
            ConversationState.data,
            ConversationState.expires_at,
        ).where(
            tuple_(ConversationState.community_id, ConversationState.openid).in_(list(set(keys)))
        )
    )
    return {(c, o): (state, data or {}, expires) for c, o, state, data, expires in rows}


async def save(
    session: AsyncSession,
    community_id: str,
    openid: str,
    state: str | None,
    data: dict[str, Any],
    expires_at: dt.datetime | None,
) -> None:
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    values = {"state": state, "data": data, "expires_at": expires_at}
    statement = insert(ConversationState).values(community_id=community_id, openid=openid, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ConversationState.community_id, ConversationState.openid],
            set_={**values, "updated_at": dt.datetime.now(dt.UTC)},
        )
    )
