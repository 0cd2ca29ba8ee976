"""What the console's front counts, and which open orders are overdue.

* **新订单**: placed or dispatched, not yet accepted by the unit.
* **超时**: with a unit (派单, 接单, 服务中, 督办, 重办) past the unit's promise, on the
  working-time calendar the evaluation and the reminders use (``Rules.deadline``):
  not accepted within the unit's ``accept_within_hours`` of its latest dispatch, or
  not completed within ``complete_within_hours`` of it (of the 重办, for a reopened
  order: the unit's time runs again from the resident's 没解决).
* **通知没送到**: from ``bot.web.deliveries``.
* **等回访**: completed, and the resident has not yet said it was solved nor rated it.
* **重办**: the resident said 没解决 and it is back with the unit.

Every count and list goes through the caller's ``visible`` (confidential items are
not counted for community staff: a count is a trace too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.order_status import OrderStatus
from storage.repositories.evaluation import Rules

NEW = (OrderStatus.SUBMITTED.value, OrderStatus.DISPATCHED.value)
WITH_UNIT = (
    OrderStatus.DISPATCHED.value,
    OrderStatus.ACCEPTED.value,
    OrderStatus.IN_SERVICE.value,
    OrderStatus.ESCALATED.value,
    OrderStatus.REOPENED.value,
)
Visible = Callable[[Any], Any]


def awaiting_followup() -> Any:
    """Completed, and since the latest completion no 解决了 from the resident (a rating
    moves the order on to 已评价)."""
    completed = (
        select(func.max(models.OrderEvent.at))
        .where(
            models.OrderEvent.order_id == models.Order.id,
            models.OrderEvent.to_status == OrderStatus.COMPLETED.value,
        )
        .scalar_subquery()
    )
    said_solved = exists().where(
        models.ResidentRemark.order_id == models.Order.id,
        models.ResidentRemark.kind == "outcome",
        models.ResidentRemark.detail == "solved",
        models.ResidentRemark.created_at >= completed,
    )
    return and_(models.Order.status == OrderStatus.COMPLETED.value, ~said_solved)


async def overdue(
    session: AsyncSession, community_id: str, rules: Rules, visible: Visible
) -> dict[int, dt.datetime]:
    """The open orders past their unit's promise, with when it ran out."""
    query = visible(
        select(
            models.Order.id,
            models.Order.status,
            models.Unit.accept_within_hours,
        )
        .join(models.Item, models.Order.item_id == models.Item.id)
        .join(models.Unit, models.Order.unit_id == models.Unit.id)
        .where(
            models.Order.community_id == community_id,
            models.Order.status.in_(WITH_UNIT),
        )
    )
    orders = {row[0]: (row[1], row[2]) for row in await session.execute(query)}
    if not orders:
        return {}
    starts: dict[int, dict[str, dt.datetime]] = {}
    for order_id, status, at in await session.execute(
        select(
            models.OrderEvent.order_id,
            models.OrderEvent.to_status,
            func.max(models.OrderEvent.at),
        )
        .where(
            models.OrderEvent.order_id.in_(list(orders)),
            models.OrderEvent.to_status.in_(("dispatched", "accepted", "reopened")),
        )
        .group_by(models.OrderEvent.order_id, models.OrderEvent.to_status)
    ):
        starts.setdefault(order_id, {})[status] = _aware(at)
    late = {}
    for order_id, (status, accept_hours) in orders.items():
        seen = starts.get(order_id, {})
        dispatched = seen.get("dispatched")
        if dispatched is None:
            continue
        accepted = seen.get("accepted")
        if status == OrderStatus.REOPENED.value and "reopened" in seen:
            due = rules.deadline(seen["reopened"], rules.complete_within_hours)
        elif accepted is None or accepted < dispatched:  # not accepted since this dispatch
            due = rules.deadline(dispatched, accept_hours)
        else:
            due = rules.deadline(dispatched, rules.complete_within_hours)
        if rules.now > due:
            late[order_id] = due
    return late


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


async def front_counts(
    session: AsyncSession,
    community_id: str,
    visible: Visible,
    late: dict[int, dt.datetime],
    undelivered: int,
) -> list[dict[str, Any]]:
    """The front page's counts, each with the board's filter that lists them."""

    async def count(*conditions: Any) -> int:
        query = visible(
            select(func.count(models.Order.id))
            .join(models.Item, models.Order.item_id == models.Item.id)
            .where(models.Order.community_id == community_id, *conditions)
        )
        return int(await session.scalar(query) or 0)

    return [
        {
            "key": "new",
            "words": "新订单（还没接单）",
            "count": await count(models.Order.status.in_(NEW)),
            "link": "/console?show=new",
        },
        {
            "key": "overdue",
            "words": "超时未办",
            "count": len(late),
            "link": "/console?show=overdue",
        },
        {
            "key": "undelivered",
            "words": "通知没送到",
            "count": undelivered,
            "link": "/console?undelivered=1",
        },
        {
            "key": "followup",
            "words": "等居民回访",
            "count": await count(awaiting_followup()),
            "link": "/console?show=followup",
        },
        {
            "key": "reopened",
            "words": "居民说没解决（重办）",
            "count": await count(models.Order.status == OrderStatus.REOPENED.value),
            "link": "/console?status=reopened",
        },
    ]
