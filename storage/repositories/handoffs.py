"""转人工: messages handed to community staff, who answer them from the console."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import Handoff


async def hand_off(
    session: AsyncSession, *, community_id: str, openid: str, message_key: str, text: str
) -> None:
    """Put a message on the staff's 转人工 list, once per inbound message (a retried
    message, or a second handler on the same message, adds nothing)."""
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert(Handoff).values(
        community_id=community_id, openid=openid, message_key=message_key, text=text
    )
    await session.execute(statement.on_conflict_do_nothing())
