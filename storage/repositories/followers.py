"""我也遇到: residents who joined an order for the same problem (``order_followers``).

Plain queries of the caller's session; what may be joined, and what joining and
leaving cause, is the order domain's (``bot.orders.shared``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.order_status import OPEN_STATUSES
from storage.repositories.ordering import normalise_code

FOLLOWING = "following"
LEFT = "left"


async def open_orders_of_item(
    session: AsyncSession, community_id: str, item_id: int, *, limit: int = 50
) -> list[models.Order]:
    """The item's open orders in the community, oldest first (the one being handled
    longest is the one to join)."""
    rows = await session.scalars(
        select(models.Order)
        .where(
            models.Order.community_id == community_id,
            models.Order.item_id == item_id,
            models.Order.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(models.Order.created_at, models.Order.id)
        .limit(limit)
    )
    return list(rows)


async def follower_row(
    session: AsyncSession, order_id: int, resident_id: int
) -> models.OrderFollower | None:
    return await session.scalar(
        select(models.OrderFollower).where(
            models.OrderFollower.order_id == order_id,
            models.OrderFollower.resident_id == resident_id,
        )
    )


async def follow(
    session: AsyncSession,
    order_id: int,
    resident_id: int,
    *,
    message_key: str | None,
    building: str | None,
    note: str | None,
) -> tuple[models.OrderFollower, bool]:
    """The resident follows the order; the row, and whether they were not following it
    before (a second join, or a retry racing the first, changes nothing)."""
    row = await follower_row(session, order_id, resident_id)
    if row is None:
        row = models.OrderFollower(
            order_id=order_id,
            resident_id=resident_id,
            status=FOLLOWING,
            message_key=message_key,
            building=building,
            note=note,
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # joined at the same moment by another process
            found = await follower_row(session, order_id, resident_id)
            assert found is not None
            return found, False
        return row, True
    if row.status == FOLLOWING:
        return row, False
    row.status, row.left_at, row.message_key = FOLLOWING, None, message_key
    return row, True


async def leave(session: AsyncSession, row: models.OrderFollower, now: dt.datetime) -> None:
    row.status, row.left_at = LEFT, now


async def followers_of(session: AsyncSession, order_id: int) -> list[tuple[int, str]]:
    """(follower row id, openid) of each resident following the order who has WeChat,
    in the order they joined."""
    rows = await session.execute(
        select(models.OrderFollower.id, models.Resident.openid)
        .join(models.Resident, models.OrderFollower.resident_id == models.Resident.id)
        .where(
            models.OrderFollower.order_id == order_id,
            models.OrderFollower.status == FOLLOWING,
            models.Resident.openid.is_not(None),
        )
        .order_by(models.OrderFollower.id)
    )
    return [(row_id, str(openid)) for row_id, openid in rows]


async def first_follower(session: AsyncSession, order_id: int) -> models.OrderFollower | None:
    return await session.scalar(
        select(models.OrderFollower)
        .where(
            models.OrderFollower.order_id == order_id,
            models.OrderFollower.status == FOLLOWING,
        )
        .order_by(models.OrderFollower.id)
        .limit(1)
    )


async def households(session: AsyncSession, order_ids: Iterable[int]) -> dict[int, int]:
    """Households that reported each order: its reporter and those following it."""
    ids = list(order_ids)
    counts = {order_id: 1 for order_id in ids}
    if not ids:
        return counts
    for order_id, following in await session.execute(
        select(models.OrderFollower.order_id, func.count())
        .where(
            models.OrderFollower.order_id.in_(ids),
            models.OrderFollower.status == FOLLOWING,
        )
        .group_by(models.OrderFollower.order_id)
    ):
        counts[order_id] += following
    return counts


async def followed_order(
    session: AsyncSession, community_id: str, openid: str, code: str
) -> tuple[models.Order, models.OrderFollower] | None:
    """An order the resident follows (or followed) by its code, locked for update."""
    found = (
        await session.execute(
            select(models.Order, models.OrderFollower)
            .join(models.OrderFollower, models.OrderFollower.order_id == models.Order.id)
            .join(models.Resident, models.OrderFollower.resident_id == models.Resident.id)
            .where(
                models.Order.community_id == community_id,
                models.Order.code == normalise_code(code),
                models.Resident.openid == openid,
            )
            .with_for_update(of=models.Order)
        )
    ).first()
    return (found[0], found[1]) if found is not None else None
