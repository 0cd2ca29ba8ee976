"""The 公示 page's per-grid (网格) board: how many orders are open and completed in each
grid. Counts only, nothing about a resident; confidential items (廉情监督反映) are not
counted at all, since a count going up by one tells that someone reported."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus

DONE = (OrderStatus.COMPLETED.value, OrderStatus.RATED.value)


@dataclass
class GridCounts:
    open: int = 0
    """Orders being handled now (submitted, dispatched, accepted, in service, …)."""
    completed_since: int = 0
    """Orders completed since the given moment (the start of the month)."""
    completed: int = 0
    """Orders completed, ever."""


async def grid_counts(
    session: AsyncSession, community_id: str, since: dt.datetime
) -> dict[str | None, GridCounts]:
    """Counts per ``grid_key`` (None: orders without a grid)."""
    public = (
        select(models.Order.id, models.Order.grid_key, models.Order.status)
        .join(models.Item, models.Order.item_id == models.Item.id)
        .where(models.Order.community_id == community_id, models.Item.confidential.is_(False))
        .subquery()
    )
    board: dict[str | None, GridCounts] = {}
    for grid, status, count in await session.execute(
        select(public.c.grid_key, public.c.status, func.count()).group_by(
            public.c.grid_key, public.c.status
        )
    ):
        counts = board.setdefault(grid, GridCounts())
        if status in OPEN_STATUSES:
            counts.open += count
        elif status in DONE:
            counts.completed += count
    for grid, count in await session.execute(
        select(public.c.grid_key, func.count(func.distinct(public.c.id)))
        .join(models.OrderEvent, models.OrderEvent.order_id == public.c.id)
        .where(
            models.OrderEvent.to_status == OrderStatus.COMPLETED.value,
            models.OrderEvent.at >= since,
        )
        .group_by(public.c.grid_key)
    ):
        board.setdefault(grid, GridCounts()).completed_since += count
    return board
