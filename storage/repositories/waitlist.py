"""Waiting lists of full slots, and the offers of places freed in them.

An entry is ``waiting`` until a place is freed; it is then ``offered`` (the place is
held for the resident: it stays counted in the slot's ``booked``) until
``hold_until``, and ends ``accepted``, ``declined`` or ``expired``. Each move is one
conditional UPDATE on the status (:func:`move`): of two transactions handing the same
place on, or a resident accepting while the hold runs out, exactly one wins, on
SQLite and PostgreSQL alike. What an offer says and what follows it is the order
domain's (``bot.orders.waitlist``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.claims import claimable
from storage.engine import dialect_name
from storage.types import utcnow

WAITING = "waiting"
OFFERED = "offered"
ACCEPTED = "accepted"
DECLINED = "declined"
EXPIRED = "expired"

Table: Any = models.WaitlistEntry.__table__


async def join(session: AsyncSession, slot_id: int, resident_id: int, *, people: int = 1) -> None:
    """Put a resident on a full slot's waiting list, at the end; once (joining
    again after an offer ended queues again)."""
    entry = await session.scalar(
        select(models.WaitlistEntry).where(
            models.WaitlistEntry.slot_id == slot_id,
            models.WaitlistEntry.resident_id == resident_id,
        )
    )
    if entry is None:
        session.add(
            models.WaitlistEntry(
                slot_id=slot_id, resident_id=resident_id, people=people, status=WAITING
            )
        )
    elif entry.status not in (WAITING, OFFERED):
        entry.status, entry.people, entry.created_at = WAITING, people, utcnow()
        entry.offered_at = entry.hold_until = entry.order_id = None
    await session.flush()


async def waiting(session: AsyncSession, slot_id: int) -> list[models.WaitlistEntry]:
    """Who waits for a place in the slot, first come first."""
    rows = await session.scalars(
        select(models.WaitlistEntry)
        .where(models.WaitlistEntry.slot_id == slot_id, models.WaitlistEntry.status == WAITING)
        .order_by(models.WaitlistEntry.created_at, models.WaitlistEntry.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def move(
    session: AsyncSession, entry_id: int, from_status: str, to_status: str, **values: Any
) -> bool:
    """Move an entry on if it is still ``from_status``; whether this call did."""
    result = await session.execute(
        update(Table)
        .where(Table.c.id == entry_id, Table.c.status == from_status)
        .values(status=to_status, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def lapsed(
    session: AsyncSession, *, now: dt.datetime, communities: Collection[str], limit: int
) -> list[tuple[models.WaitlistEntry, str]]:
    """Offers whose hold ran out, with their community, of the communities served
    here, oldest first; locked for the caller's transaction (skipped by other pollers
    on PostgreSQL)."""
    query = (
        select(models.WaitlistEntry, models.Item.community_id)
        .join(models.ItemSlot, models.WaitlistEntry.slot_id == models.ItemSlot.id)
        .join(models.Item, models.ItemSlot.item_id == models.Item.id)
        .where(
            models.WaitlistEntry.status == OFFERED,
            models.WaitlistEntry.hold_until <= now,
            models.Item.community_id.in_(list(communities)),
        )
        .order_by(models.WaitlistEntry.hold_until, models.WaitlistEntry.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    query = claimable(query, dialect_name(session), of=models.WaitlistEntry)
    return [(entry, community) for entry, community in (await session.execute(query)).all()]


async def set_aside(
    session: AsyncSession, entry_id: int, error: str, retry_at: dt.datetime
) -> None:
    """Handing this hold on failed: note why, and try again at ``retry_at``."""
    await session.execute(
        update(Table)
        .where(Table.c.id == entry_id, Table.c.status == OFFERED)
        .values(error=error[:2000], hold_until=retry_at)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Offer:
    """A place held for a resident, as the conversation needs it."""

    entry_id: int
    slot_id: int
    item_key: str
    starts_at: dt.datetime
    location: str | None
    people: int
    hold_until: dt.datetime


async def open_offers(
    session: AsyncSession, community_id: str, openid: str, *, item_key: str | None = None
) -> list[Offer]:
    """The places held for this resident now, the latest offer first."""
    query = (
        select(
            models.WaitlistEntry.id,
            models.WaitlistEntry.slot_id,
            models.Item.key,
            models.ItemSlot.starts_at,
            models.ItemSlot.location,
            models.WaitlistEntry.people,
            models.WaitlistEntry.hold_until,
        )
        .join(models.Resident, models.WaitlistEntry.resident_id == models.Resident.id)
        .join(models.ItemSlot, models.WaitlistEntry.slot_id == models.ItemSlot.id)
        .join(models.Item, models.ItemSlot.item_id == models.Item.id)
        .where(
            models.Resident.community_id == community_id,
            models.Resident.openid == openid,
            models.WaitlistEntry.status == OFFERED,
        )
        .order_by(models.WaitlistEntry.offered_at.desc(), models.WaitlistEntry.id.desc())
    )
    if item_key is not None:
        query = query.where(models.Item.key == item_key)
    return [
        Offer(entry, booked, item, starts, location, people, until)
        for entry, booked, item, starts, location, people, until in await session.execute(query)
        if until is not None
    ]
