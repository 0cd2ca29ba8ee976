"""What a message leaves for community staff: a remark kept for them, or the message
handed to a person (转人工). Both keyed by the message, so a retried message leaves
one of each; the caller's transaction holds them with the rest of its effects."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import Context
from storage.repositories import handoffs, remarks


async def hand_to_staff(
    session: AsyncSession, ctx: Context, text: str, *, asked: bool = False
) -> None:
    """Put the message on the staff's 转人工 list, as ``text`` (into the thread of
    the resident's open handoff, if there is one). ``asked``: the resident asked for
    a person (转人工); their messages go to staff only until staff close it."""
    await handoffs.hand_off(
        session,
        community_id=ctx.community_id,
        openid=ctx.openid,
        message_key=ctx.message_key,
        text=text,
        now=ctx.clock.now(),
        asked=asked,
    )


async def remark(
    session: AsyncSession,
    ctx: Context,
    kind: str,
    *,
    detail: str | None = None,
    unit_key: str | None = None,
    order_id: int | None = None,
) -> bool:
    """Keep the message as a remark of ``kind`` (emergency, praise, complaint,
    outcome); True when this call recorded it (alert staff only then)."""
    return await remarks.record_remark(
        session,
        community_id=ctx.community_id,
        openid=ctx.openid,
        message_key=ctx.message_key,
        kind=kind,
        text=ctx.text,
        detail=detail,
        unit_key=unit_key,
        order_id=order_id,
    )
