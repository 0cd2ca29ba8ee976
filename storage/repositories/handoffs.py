"""转人工: a resident handed to community staff, and the thread that follows.

A handoff stays open until staff close it. While it is open, what the resident
writes (another 转人工, a question the bot would hand on, anything) goes into its
thread rather than starting a new one, and staff replies are kept there too.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import Handoff, HandoffMessage
from storage.types import utcnow

OPEN = "open"
CLOSED = "closed"


async def open_handoff(session: AsyncSession, community_id: str, openid: str) -> Handoff | None:
    """The resident's open handoff, if any (the oldest, should there be two)."""
    found: Handoff | None = await session.scalar(
        select(Handoff)
        .where(
            Handoff.community_id == community_id,
            Handoff.openid == openid,
            Handoff.status == OPEN,
        )
        .order_by(Handoff.created_at, Handoff.id)
        .limit(1)
    )
    return found


async def hand_off(
    session: AsyncSession,
    *,
    community_id: str,
    openid: str,
    message_key: str,
    text: str,
    now: dt.datetime | None = None,
    asked: bool = False,
) -> None:
    """Put a message on the staff's 转人工 list, once per inbound message (a retried
    message, or a second handler on the same message, adds nothing). While the
    resident's handoff is open, the message joins its thread instead. ``asked``: the
    resident asked for a person, so until staff close it their messages go to staff
    only (see ``handlers.handoff_thread``)."""
    current = await open_handoff(session, community_id, openid)
    if current is not None:
        if current.message_key != message_key:
            await add_resident_message(session, current, message_key, text, now)
        if asked:
            current.asked = True
        return
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert(Handoff).values(
        community_id=community_id,
        openid=openid,
        message_key=message_key,
        text=text,
        created_at=now or utcnow(),
        asked=asked,
    )
    await session.execute(statement.on_conflict_do_nothing())


async def add_resident_message(
    session: AsyncSession,
    handoff: Handoff,
    message_key: str,
    text: str,
    now: dt.datetime | None = None,
) -> None:
    """The resident's message in the thread, once however often it is retried."""
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert(HandoffMessage).values(
        handoff_id=handoff.id,
        author="resident",
        message_key=message_key,
        text=text,
        at=now or utcnow(),
    )
    await session.execute(statement.on_conflict_do_nothing())


async def add_staff_reply(
    session: AsyncSession, handoff: Handoff, staff: str, text: str, now: dt.datetime
) -> HandoffMessage | None:
    """A staff reply in the thread; None when the same staff member sent the same
    words in the last two minutes (a double click, a resent form)."""
    recent = await session.scalar(
        select(HandoffMessage.id).where(
            HandoffMessage.handoff_id == handoff.id,
            HandoffMessage.author == "staff",
            HandoffMessage.staff == staff,
            HandoffMessage.text == text,
            HandoffMessage.at > now - dt.timedelta(minutes=2),
        )
    )
    if recent is not None:
        return None
    reply = HandoffMessage(handoff_id=handoff.id, author="staff", staff=staff, text=text, at=now)
    session.add(reply)
    await session.flush()
    handoff.answered_at = now
    return reply


async def threads(session: AsyncSession, ids: list[int]) -> dict[int, list[HandoffMessage]]:
    """The thread of each handoff, oldest first."""
    if not ids:
        return {}
    rows = (
        await session.scalars(
            select(HandoffMessage)
            .where(HandoffMessage.handoff_id.in_(ids))
            .order_by(HandoffMessage.id)
        )
    ).all()
    found: dict[int, list[HandoffMessage]] = {i: [] for i in ids}
    for row in rows:
        found[row.handoff_id].append(row)
    return found
