"""The community's WeChat groups (楼栋群) and the campaigns staff ticked as posted there.

A tick is one row per campaign and group: ticking twice (a double click, two staff at
once) keeps the first tick, and un-ticking deletes it. :func:`posted_groups` is what
a coverage view reads: for a campaign, the groups it went to and the buildings they
cover.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import insert_new
from storage.models import GroupPost, WeChatGroup


@dataclass(frozen=True)
class PostedGroup:
    """A group a campaign was posted to, as ticked by staff."""

    group_id: int
    name: str
    grid_key: str | None
    buildings: tuple[str, ...]
    """As staff typed them (3栋, 解东小区5栋), when the group was ticked."""
    posted_by: str
    posted_at: dt.datetime


async def groups(
    session: AsyncSession, community_id: str, *, active_only: bool = False
) -> Sequence[WeChatGroup]:
    """The community's groups by grid, then name."""
    statement = select(WeChatGroup).where(WeChatGroup.community_id == community_id)
    if active_only:
        statement = statement.where(WeChatGroup.active.is_(True))
    return (await session.scalars(statement.order_by(WeChatGroup.grid_key, WeChatGroup.name))).all()


async def group(session: AsyncSession, community_id: str, group_id: int) -> WeChatGroup | None:
    """One of the community's groups; None for another community's or none."""
    return await session.scalar(
        select(WeChatGroup).where(
            WeChatGroup.community_id == community_id, WeChatGroup.id == group_id
        )
    )


async def group_named(session: AsyncSession, community_id: str, name: str) -> WeChatGroup | None:
    return await session.scalar(
        select(WeChatGroup).where(
            WeChatGroup.community_id == community_id, WeChatGroup.name == name
        )
    )


async def add_group(
    session: AsyncSession,
    community_id: str,
    name: str,
    grid_key: str | None,
    buildings: list[str],
) -> WeChatGroup:
    """A new active group; the caller checked that the name is free."""
    row = WeChatGroup(
        community_id=community_id,
        name=name,
        grid_key=grid_key,
        buildings=list(buildings),
        active=True,
    )
    session.add(row)
    await session.flush()
    return row


async def tick(
    session: AsyncSession, broadcast_id: int, group_id: int, posted_by: str, now: dt.datetime
) -> bool:
    """Record the campaign as posted to the group; False when it already was (the
    first tick, its time and who made it, stay)."""
    covers = select(WeChatGroup.buildings).where(WeChatGroup.id == group_id).scalar_subquery()
    done = await session.execute(
        insert_new(session, GroupPost)
        .values(
            broadcast_id=broadcast_id,
            group_id=group_id,
            posted_by=posted_by,
            posted_at=now,
            buildings=covers,
        )
        .returning(GroupPost.id)
    )
    return done.scalar() is not None


async def untick(session: AsyncSession, broadcast_id: int, group_id: int) -> bool:
    """Forget that the campaign went to the group; False when it was not ticked."""
    done = await session.execute(
        delete(GroupPost)
        .where(GroupPost.broadcast_id == broadcast_id, GroupPost.group_id == group_id)
        .returning(GroupPost.id)
    )
    return done.scalar() is not None


async def posted_groups(session: AsyncSession, broadcast_id: int) -> list[PostedGroup]:
    """The groups a campaign was posted to (inactive ones too: it did go there), by
    grid and name, with the buildings each covered when it was ticked."""
    rows = await session.execute(
        select(WeChatGroup, GroupPost)
        .join(GroupPost, GroupPost.group_id == WeChatGroup.id)
        .where(GroupPost.broadcast_id == broadcast_id)
        .order_by(WeChatGroup.grid_key, WeChatGroup.name)
    )
    return [
        PostedGroup(
            group_id=g.id,
            name=g.name,
            grid_key=g.grid_key,
            buildings=tuple(p.buildings or ()),
            posted_by=p.posted_by,
            posted_at=p.posted_at,
        )
        for g, p in rows.all()
    ]
