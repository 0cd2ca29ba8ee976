"""我也遇到: one order for one problem, however many households report it.

A resident reporting a shared problem (``Item.is_shared_problem``: a leak, a broken
lamp, a hazard, noise) where an open order for the same item already is, in the same
building (or, when the building is not known, the same grid), is offered to join it.
Joining makes them a follower (``order_followers``): the unit is told once that one
more household reported it (共N户反映 from then on in what it is told about the order),
and the follower hears of each change like the reporter (``effects.order_changed``).

A follower may withdraw their own interest, never the order. The reporter who cancels
an order others have joined hands it to the first of them instead: the problem is
still theirs. Nothing is joined across communities (orders are looked up in the
community's own item) nor into a confidential item (never a shared problem).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.orders import effects
from catalog.forms import questions_for
from catalog.model import Catalog
from catalog.notices import building_number, same_building
from catalog.schema import Item
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus
from storage.repositories import followers


def _said_building(item: Item, answers: dict[str, object]) -> str | None:
    for question in questions_for(item):
        if question.kind == "building" and isinstance(answers.get(question.id), str):
            return str(answers[question.id])
    return None


@dataclass(frozen=True)
class Joinable:
    """An open order a resident may join."""

    order_id: int
    code: str
    place: str
    """Where it is, as the offer says it: 5栋, or the grid's name."""


async def joinable(
    session: AsyncSession,
    catalog: Catalog,
    item: Item,
    *,
    resident_id: int | None,
    building: str | None,
    grid: str | None,
) -> Joinable | None:
    """The open order of ``item`` at the resident's place they might join, or None.

    ``building``: where the resident said it is, in their words. The same building
    (五栋 is 解东小区5栋2单元, not 15栋 nor another estate's or grid's 5栋) when it
    names one; else the same grid. The resident's own orders are left out."""
    numbered = building_number(building) if building else None
    if not item.is_shared_problem or (numbered is None and grid is None):
        return None
    item_id = await session.scalar(
        select(models.Item.id).where(
            models.Item.community_id == catalog.community_id, models.Item.key == item.id
        )
    )
    if item_id is None:
        return None
    grids = {g.id: g.name for g in catalog.document.community.grids}
    for order in await followers.open_orders_of_item(session, catalog.community_id, item_id):
        if order.resident_id == resident_id:
            continue
        if building is not None and numbered is not None:
            same_grid = grid is None or order.grid_key is None or order.grid_key == grid
            theirs = _said_building(item, order.answers or {})
            numbered_too = theirs is not None and building_number(theirs) is not None
            if numbered_too and same_grid and same_building(building, str(theirs)):
                return Joinable(order.id, order.code, f"{numbered[1]}栋")
        elif grid is not None and order.grid_key == grid:
            return Joinable(order.id, order.code, grids.get(grid, "您这个网格"))
    return None


@dataclass(frozen=True)
class Joined:
    code: str
    households: int


async def join(
    session: AsyncSession,
    catalog: Catalog,
    *,
    order_id: int,
    resident: models.Resident,
    message_key: str | None,
    building: str | None,
    note: str | None,
) -> Joined | None:
    """The resident joins the order; None if it is no longer open (or not this
    community's shared problem). The unit hears of a new household once."""
    order = await session.scalar(
        select(models.Order).where(models.Order.id == order_id).with_for_update()
    )
    if (
        order is None
        or order.community_id != catalog.community_id
        or OrderStatus(order.status) not in OPEN_STATUSES
    ):
        return None
    facts = await effects.load_facts(session, catalog, order)
    if not facts.item.is_shared_problem:
        return None
    if order.resident_id == resident.id:
        return Joined(order.code, facts.households)
    row, new = await followers.follow(
        session,
        order.id,
        resident.id,
        message_key=message_key,
        building=building,
        note=note[:500] if note else None,
    )
    households = (await followers.households(session, [order.id]))[order.id]
    if new:
        where = f"（{building}）" if building else ""
        lines = [
            f"【同一问题】{facts.item.title} 订单号：{order.code}",
            f"又有一户居民反映了同样的问题{where}，共{households}户反映。",
        ]
        if note:
            lines.append(f"这户说：{note[:200]}")
        await effects.notify_unit(
            session,
            catalog,
            facts.unit,
            f"followed:{order.code}:{row.id}",
            "同一问题",
            lines,
            order.id,
        )
    return Joined(order.code, households)


async def leave(
    session: AsyncSession, catalog: Catalog, *, openid: str, code: str, now: dt.datetime
) -> str | None:
    """A follower withdraws their interest in an order (not the order); its code, or
    None if they do not follow it."""
    found = await followers.followed_order(session, catalog.community_id, openid, code)
    if found is None:
        return None
    order, row = found
    if row.status == followers.FOLLOWING:
        await followers.leave(session, row, now)
    return order.code


async def hand_over(
    session: AsyncSession, order: models.Order, now: dt.datetime
) -> models.OrderFollower | None:
    """The reporter withdraws from an order others joined: the first follower becomes
    its reporter (they hear of it, are asked 回访, may cancel it) and the former
    reporter is kept as one who left. None (nothing changed) if nobody follows it."""
    first = await followers.first_follower(session, order.id)
    if first is None:
        return None
    former = order.resident_id
    order.resident_id = first.resident_id
    first.resident_id, first.status, first.left_at = former, followers.LEFT, now
    return first
