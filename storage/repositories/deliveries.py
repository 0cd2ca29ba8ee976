"""Notifications that were not delivered, by order: what the console marks, and
sending them again once their cause is fixed.

A row is *undelivered* while it is ``failed`` (given up) or ``unknown`` (sent with no
clear answer). Sending one again puts the same row (the same key) back to
``pending`` with a conditional update, ``WHERE status`` is still what it was read as:
of two transactions that both try (two members binding at once, a member binding
while staff press 重新发送), one moves it and the other finds nothing to do, so the
notification goes out once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Item, Order, OutboxMessage, Unit
from storage.order_status import OPEN_STATUSES

UNDELIVERED = ("failed", "unknown")
NO_MEMBER = "no_member"
SETTING = "setting:"
"""Prefix of the cause of a row whose channel needs an environment variable unset."""


def _open() -> Any:
    return Order.status.in_([s.value for s in OPEN_STATUSES])


def _open_orders_undelivered(community_id: str) -> Select[Any]:
    return (
        select(OutboxMessage.order_id)
        .join(Order, Order.id == OutboxMessage.order_id)
        .where(
            OutboxMessage.community_id == community_id,
            OutboxMessage.status.in_(UNDELIVERED),
            _open(),
        )
    )


async def undelivered_by_order(session: AsyncSession, order_ids: Collection[int]) -> dict[int, int]:
    """How many notifications of each of ``order_ids`` were not delivered (only the
    orders with some)."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(OutboxMessage.order_id, func.count())
        .where(OutboxMessage.order_id.in_(order_ids), OutboxMessage.status.in_(UNDELIVERED))
        .group_by(OutboxMessage.order_id)
    )
    return {int(order_id): int(n) for order_id, n in rows if order_id is not None}


async def open_orders_undelivered(session: AsyncSession, community_id: str) -> int:
    """How many open orders have a notification that was not delivered."""
    subquery = _open_orders_undelivered(community_id).distinct().subquery()
    return int(await session.scalar(select(func.count()).select_from(subquery)) or 0)


def undelivered_condition(community_id: str) -> Any:
    """A condition on ``Order``: it is open and has an undelivered notification."""
    return Order.id.in_(_open_orders_undelivered(community_id))


@dataclass(frozen=True)
class Undelivered:
    id: int
    channel: str
    target: str
    status: str
    cause: str | None
    last_error: str | None
    title: str
    created_at: dt.datetime
    resending: bool
    """Put back to be sent again and not sent yet."""


async def of_order(session: AsyncSession, order_id: int) -> list[Undelivered]:
    """An order's notifications not delivered, and those being sent again (oldest
    first)."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.status.in_((*UNDELIVERED, "pending", "sending")),
            OutboxMessage.cause.is_not(None),
        )
        .order_by(OutboxMessage.id)
    )
    return [
        Undelivered(
            id=row.id,
            channel=row.channel,
            target=row.target,
            status=row.status,
            cause=row.cause,
            last_error=row.last_error,
            title=str((row.payload or {}).get("title") or ""),
            created_at=row.created_at,
            resending=row.status not in UNDELIVERED,
        )
        for row in rows
    ]


async def _requeue(
    session: AsyncSession,
    row: OutboxMessage,
    now: dt.datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Put ``row`` back to be sent at once, if it is still as it was read."""
    values: dict[str, Any] = {"status": "pending", "attempts": 0, "next_attempt_at": now}
    if payload is not None:
        values["payload"] = payload
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.status == row.status)
        .values(values)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def resend_to_new_member(
    session: AsyncSession, community_id: str, unit_key: str, openid: str, now: dt.datetime
) -> int:
    """A member of ``unit_key`` just bound (in this transaction): the unit's
    notifications of open orders that failed because nobody was bound go to them.
    How many."""
    rows = await session.scalars(
        select(OutboxMessage)
        .join(Order, Order.id == OutboxMessage.order_id)
        .where(
            OutboxMessage.community_id == community_id,
            OutboxMessage.target == unit_key,
            OutboxMessage.channel == "wechat",
            OutboxMessage.status == "failed",
            OutboxMessage.cause == NO_MEMBER,
            _open(),
        )
        .order_by(OutboxMessage.id)
        .with_for_update(of=OutboxMessage)
    )
    resent = 0
    for row in rows.all():
        payload = {**(row.payload or {}), "member": openid}
        resent += await _requeue(session, row, now, payload)
    return resent


async def resend_configured(
    session: AsyncSession,
    communities: Collection[str],
    is_set: Callable[[str], bool],
    now: dt.datetime,
) -> int:
    """Notifications of open orders that failed for want of a setting (an environment
    variable) that ``is_set`` now: sent again. How many."""
    rows = await session.scalars(
        select(OutboxMessage)
        .join(Order, Order.id == OutboxMessage.order_id)
        .where(
            OutboxMessage.community_id.in_(communities),
            OutboxMessage.status == "failed",
            OutboxMessage.cause.startswith(SETTING),
            _open(),
        )
        .order_by(OutboxMessage.id)
        .with_for_update(of=OutboxMessage, skip_locked=True)
    )
    resent = 0
    for row in rows.all():
        if is_set((row.cause or "")[len(SETTING) :]):
            resent += await _requeue(session, row, now)
    return resent


async def resend_one(
    session: AsyncSession, community_id: str, order_id: int, row_id: int, now: dt.datetime
) -> OutboxMessage | None:
    """Staff press 重新发送 on one of an order's notifications: put back to be sent,
    if it is still undelivered (None: it is not, or not this order's)."""
    row = await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.id == row_id,
            OutboxMessage.community_id == community_id,
            OutboxMessage.order_id == order_id,
            OutboxMessage.status.in_(UNDELIVERED),
        )
        .with_for_update()
    )
    if row is None or not await _requeue(session, row, now):
        return None
    return row


@dataclass(frozen=True)
class OpenOrder:
    """An open order as the daily digest weighs it."""

    code: str
    title: str
    unit_key: str
    unit_name: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    causes: tuple[tuple[str | None, str], ...]
    """(cause, channel) of each notification of it not delivered."""


async def open_orders(
    session: AsyncSession, community_id: str, limit: int = 2000
) -> list[OpenOrder]:
    """The community's open orders (not confidential ones: staff are not shown those),
    oldest first, with their undelivered notifications."""
    rows = (
        await session.execute(
            select(
                Order.id,
                Order.code,
                Item.title,
                Unit.key,
                Unit.name,
                Order.status,
                Order.created_at,
                Order.updated_at,
            )
            .join(Item, Order.item_id == Item.id)
            .join(Unit, Order.unit_id == Unit.id)
            .where(Order.community_id == community_id, _open(), Item.confidential.is_(False))
            .order_by(Order.created_at, Order.id)
            .limit(limit)
        )
    ).all()
    causes: dict[int, list[tuple[str | None, str]]] = {}
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 500):
        for order_id, cause, channel in await session.execute(
            select(OutboxMessage.order_id, OutboxMessage.cause, OutboxMessage.channel)
            .where(
                OutboxMessage.order_id.in_(ids[start : start + 500]),
                OutboxMessage.status.in_(UNDELIVERED),
            )
            .order_by(OutboxMessage.id)
        ):
            if order_id is not None:
                causes.setdefault(order_id, []).append((cause, channel))
    return [
        OpenOrder(
            code=code,
            title=title,
            unit_key=unit_key,
            unit_name=unit_name,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
            causes=tuple(causes.get(order_id, ())),
        )
        for order_id, code, title, unit_key, unit_name, status, created_at, updated_at in rows
    ]
