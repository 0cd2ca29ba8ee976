"""Placing orders and moving them through their life cycle.

Every change of status is written by :func:`write_transition`, which checks the
state machine (``storage.order_status``) and appends an ``order_events`` row: the
audit trail the unit portal, disclosure and evaluation read. It is called by the
order domain (``bot.orders``) alone, which adds the change's effects. Places in a slot are
taken with one conditional UPDATE (``booked + n <= capacity``), so concurrent orders
never overbook, whatever the database.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.schema import WeeklySlot
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus, check_transition
from storage.types import utcnow

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""No 0/O, 1/I/L: a code read aloud or copied by hand comes out right."""
CODE_LENGTH = 6
"""31⁶ ≈ 890 million codes, drawn at random: neither guessable nor in sequence."""

WEEKS_AHEAD = 4
"""How far ahead weekly slots are offered (and turned into dated slots)."""


ItemSlotTable: Any = models.ItemSlot.__table__
"""Core table: place counts are changed by conditional UPDATEs, not through the ORM."""


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What a resident typed for a code, case forgiven."""
    return text.strip().upper()


@dataclass(frozen=True)
class SlotOption:
    """A bookable slot of an item, as offered to a resident."""

    id: int
    key: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    location: str | None
    remaining: int | None
    """Places left; None for no limit."""


class SlotFull(Exception):
    """The slot has fewer places left than asked for."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"only {remaining} place(s) left")
        self.remaining = remaining


class OrderNotFound(LookupError):
    pass


async def item_row(session: AsyncSession, community_id: str, item_key: str) -> models.Item:
    row = await session.scalar(
        select(models.Item).where(
            models.Item.community_id == community_id,
            models.Item.key == item_key,
            models.Item.retired_at.is_(None),
        )
    )
    if row is None:
        raise LookupError(f"no item '{item_key}' in community '{community_id}'")
    return row


async def upcoming_slots(
    session: AsyncSession,
    item: models.Item,
    weekly: list[WeeklySlot],
    zone: ZoneInfo,
    *,
    now: dt.datetime | None = None,
) -> list[SlotOption]:
    """The item's slots still ahead, soonest first. Weekly slots become dated slots
    (key ``w<n>-<date>``, n the weekly slot's index) for the next few weeks, so their
    places are counted like any other slot's."""
    now = now or utcnow()
    if weekly:
        await _materialise_weekly(session, item, weekly, zone, now)
    rows = await session.scalars(
        select(models.ItemSlot)
        .where(
            models.ItemSlot.item_id == item.id,
            models.ItemSlot.retired_at.is_(None),
            models.ItemSlot.starts_at > now,
        )
        .order_by(models.ItemSlot.starts_at, models.ItemSlot.id)
    )
    return [
        SlotOption(
            id=row.id,
            key=row.key,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            location=row.location,
            remaining=None if row.capacity is None else max(row.capacity - row.booked, 0),
        )
        for row in rows
    ]


async def _materialise_weekly(
    session: AsyncSession,
    item: models.Item,
    weekly: list[WeeklySlot],
    zone: ZoneInfo,
    now: dt.datetime,
) -> None:
    existing = set(
        await session.scalars(select(models.ItemSlot.key).where(models.ItemSlot.item_id == item.id))
    )
    today = now.astimezone(zone).date()
    for index, slot in enumerate(weekly):
        for day in range(WEEKS_AHEAD * 7):
            date = today + dt.timedelta(days=day)
            if date.isoweekday() != slot.weekday:
                continue
            key = f"w{index}-{date:%Y%m%d}"
            if key in existing:
                continue
            starts = dt.datetime.combine(date, slot.start, zone).astimezone(dt.UTC)
            ends = dt.datetime.combine(date, slot.end, zone).astimezone(dt.UTC)
            try:
                async with session.begin_nested():  # another process may add it too
                    session.add(
                        models.ItemSlot(
                            item_id=item.id,
                            key=key,
                            starts_at=starts,
                            ends_at=ends,
                            capacity=slot.capacity,
                            booked=0,
                            location=slot.location,
                        )
                    )
            except IntegrityError:
                pass


async def order_by_message(
    session: AsyncSession, community_id: str, message_key: str
) -> models.Order | None:
    return await session.scalar(
        select(models.Order).where(
            models.Order.community_id == community_id, models.Order.message_key == message_key
        )
    )


async def insert_order(
    session: AsyncSession,
    *,
    community_id: str,
    item: models.Item,
    resident: models.Resident,
    answers: dict[str, Any],
    description: str = "",
    slot_id: int | None = None,
    people: int = 1,
    held: int = 0,
    grid_key: str | None = None,
    message_key: str | None = None,
    placed_by: str = "resident",
) -> tuple[models.Order, bool]:
    """Insert a submitted order and its first event, taking its places, in the caller's
    transaction; the order, and whether it is new. Dispatching it (and everything
    that follows) is the order domain's (``bot.orders.domain.place_order``).

    ``held``: places already held for this resident (a waiting-list offer taken up);
    only the rest are taken. Raises :class:`SlotFull` when the slot has fewer
    places than that. With a ``message_key``, a second call for the same message
    returns the order the first one placed (not new).
    """
    if message_key is not None:
        existing = await order_by_message(session, community_id, message_key)
        if existing is not None:
            return existing, False
    if slot_id is not None and people > held:
        await take_places(session, slot_id, people - held)
    order = models.Order(
        community_id=community_id,
        item_id=item.id,
        unit_id=item.unit_id,
        resident_id=resident.id,
        slot_id=slot_id,
        status=OrderStatus.SUBMITTED.value,
        answers=answers,
        description=description,
        grid_key=grid_key,
        placed_by=placed_by,
        message_key=message_key,
    )
    for _ in range(5):
        order.code = new_code()
        try:
            async with session.begin_nested():
                session.add(order)
        except IntegrityError:
            if message_key is not None:
                found = await order_by_message(session, community_id, message_key)
                if found is not None:
                    raise DuplicateMessage(found.code) from None
            continue  # the code was taken: draw another
        break
    else:  # five collisions in 890 million: something else is wrong
        raise RuntimeError("could not find a free order code")
    session.add(
        models.OrderEvent(
            order_id=order.id,
            actor=placed_by,
            from_status=None,
            to_status=OrderStatus.SUBMITTED.value,
            note=None,
        )
    )
    await session.flush()
    return order, True


class DuplicateMessage(Exception):
    """Another process placed the order of this message at the same moment."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def take_places(session: AsyncSession, slot_id: int, people: int) -> None:
    """Take ``people`` places with one conditional UPDATE; :class:`SlotFull` if
    fewer are left."""
    taken = ItemSlotTable.c
    result = await session.execute(
        update(ItemSlotTable)
        .where(
            taken.id == slot_id,
            (taken.capacity.is_(None)) | (taken.booked + people <= taken.capacity),
        )
        .values(booked=taken.booked + people)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        row = await session.get(models.ItemSlot, slot_id)
        remaining = 0 if row is None or row.capacity is None else row.capacity - row.booked
        raise SlotFull(max(remaining, 0))


async def release_places(session: AsyncSession, slot_id: int, people: int) -> None:
    """Give ``people`` places of a slot back (none is held for anyone)."""
    if people <= 0:
        return
    taken = ItemSlotTable.c
    await session.execute(
        update(ItemSlotTable).where(taken.id == slot_id).values(booked=taken.booked - people)
    )


def places_of(order: models.Order) -> int:
    """How many places an order with a slot holds."""
    return int((order.answers or {}).get("people", 1) or 1)


async def write_transition(
    session: AsyncSession,
    order: models.Order,
    to: OrderStatus,
    *,
    actor: str,
    note: str | None = None,
) -> models.OrderEvent:
    """The low-level write of a status change: check the state machine (raises
    ``IllegalTransition``), set the status and append the event; nothing else.

    Only the order domain (``bot.orders.domain.transition``) calls this: it writes
    what the change causes (notifications, reminders, places, waiting-list offers)
    in the same transaction. A code-quality test keeps it that way.
    """
    current = OrderStatus(order.status)
    check_transition(order.code, current, to)
    order.status = to.value
    order.updated_at = utcnow()
    event = models.OrderEvent(
        order_id=order.id,
        actor=actor,
        from_status=current.value,
        to_status=to.value,
        note=note,
    )
    session.add(event)
    await session.flush()
    return event


def select_order(community_id: str, code: str) -> Select[Any]:
    return select(models.Order).where(
        models.Order.community_id == community_id, models.Order.code == normalise_code(code)
    )


async def resident_order(
    session: AsyncSession, community_id: str, openid: str, code: str
) -> models.Order:
    """An order of this resident by its code (for update); OrderNotFound otherwise."""
    order = await session.scalar(
        select(models.Order)
        .join(models.Resident, models.Order.resident_id == models.Resident.id)
        .where(
            models.Order.community_id == community_id,
            models.Order.code == normalise_code(code),
            models.Resident.openid == openid,
        )
        .with_for_update()
    )
    if order is None:
        raise OrderNotFound(code)
    return order


@dataclass(frozen=True)
class ResidentOrder:
    code: str
    item_key: str
    title: str
    status: OrderStatus
    starts_at: dt.datetime | None
    created_at: dt.datetime


async def recent_orders(
    session: AsyncSession, community_id: str, openid: str, limit: int = 5
) -> list[ResidentOrder]:
    rows = await session.execute(
        select(
            models.Order.code,
            models.Item.key,
            models.Item.title,
            models.Order.status,
            models.ItemSlot.starts_at,
            models.Order.created_at,
        )
        .join(models.Resident, models.Order.resident_id == models.Resident.id)
        .join(models.Item, models.Order.item_id == models.Item.id)
        .outerjoin(models.ItemSlot, models.Order.slot_id == models.ItemSlot.id)
        .where(models.Order.community_id == community_id, models.Resident.openid == openid)
        .order_by(models.Order.created_at.desc(), models.Order.id.desc())
        .limit(limit)
    )
    return [
        ResidentOrder(code, key, title, OrderStatus(status), starts, created)
        for code, key, title, status, starts, created in rows
    ]


@dataclass(frozen=True)
class RecentOrder:
    """What the conversation needs to know of an order a resident may be talking about."""

    id: int
    code: str
    item: str
    title: str
    unit: str
    status: OrderStatus
    starts_at: dt.datetime | None
    rated: bool
    updated_at: dt.datetime


async def orders_touched_since(
    session: AsyncSession, community_id: str, openid: str, *, since: dt.datetime, limit: int = 20
) -> list[RecentOrder]:
    """The resident's orders changed since ``since``, most recently changed first (an
    outcome, a rating or a cancellation in words is about one of these)."""
    rows = await session.execute(
        select(
            models.Order.id,
            models.Order.code,
            models.Item.key,
            models.Item.title,
            models.Unit.key,
            models.Order.status,
            models.ItemSlot.starts_at,
            models.Order.rating,
            models.Order.updated_at,
        )
        .join(models.Resident, models.Order.resident_id == models.Resident.id)
        .join(models.Item, models.Order.item_id == models.Item.id)
        .join(models.Unit, models.Order.unit_id == models.Unit.id)
        .outerjoin(models.ItemSlot, models.Order.slot_id == models.ItemSlot.id)
        .where(
            models.Order.community_id == community_id,
            models.Resident.openid == openid,
            models.Order.updated_at > since,
        )
        .order_by(models.Order.updated_at.desc(), models.Order.id.desc())
        .limit(limit)
    )
    return [
        RecentOrder(id_, code, item, title, unit, OrderStatus(status), at, rating is not None, up)
        for id_, code, item, title, unit, status, at, rating, up in rows
    ]


async def latest_open_order(
    session: AsyncSession, community_id: str, openid: str, *, within: dt.timedelta
) -> models.Order | None:
    """The resident's most recent order still open and placed within ``within``."""
    return await session.scalar(
        select(models.Order)
        .join(models.Resident, models.Order.resident_id == models.Resident.id)
        .where(
            models.Order.community_id == community_id,
            models.Resident.openid == openid,
            models.Order.status.in_([s.value for s in OPEN_STATUSES]),
            models.Order.created_at > utcnow() - within,
        )
        .order_by(models.Order.created_at.desc(), models.Order.id.desc())
        .limit(1)
    )


async def attach(
    session: AsyncSession, order_id: int, message_key: str, kind: str, data: dict[str, Any]
) -> None:
    """Attach a photo or place to an order (once per message)."""
    exists = await session.scalar(
        select(models.OrderAttachment.id).where(
            models.OrderAttachment.order_id == order_id,
            models.OrderAttachment.message_key == message_key,
        )
    )
    if exists is None:
        session.add(
            models.OrderAttachment(order_id=order_id, message_key=message_key, kind=kind, data=data)
        )


async def latest_completion(session: AsyncSession, order_id: int) -> int | None:
    """The id of the order's latest completion event (a reopened order completed again
    has a newer one)."""
    found = await session.scalar(
        select(func.max(models.OrderEvent.id)).where(
            models.OrderEvent.order_id == order_id,
            models.OrderEvent.to_status == "completed",
        )
    )
    return int(found) if found is not None else None
