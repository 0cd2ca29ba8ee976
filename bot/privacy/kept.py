"""What is kept about one resident, and until when: for 我的信息 and the console.

Read-only: :func:`kept_about` lists the resident's contact details, the orders
still holding them (open ones until they close; closed ones until the retention
period runs out), what remains of anonymised orders (for the figures), and how many
of their texts, photos and subscriptions are kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy.erasure import KeptOrder
from bot.privacy.retention import Periods
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus
from storage.repositories import privacy as repo


@dataclass(frozen=True)
class ClosedOrder:
    """A closed order still holding contact details, and when they go."""

    order: KeptOrder
    until: dt.datetime
    """When the retention job anonymises it (``Periods.contact`` after it closed)."""


@dataclass(frozen=True)
class Kept:
    name: str | None
    phone: str | None
    building: str | None
    open_orders: list[KeptOrder] = field(default_factory=list)
    """Orders still open: they keep the contact details their unit needs."""
    closed_orders: list[ClosedOrder] = field(default_factory=list)
    """Closed orders still holding contact details (until their period ends)."""
    anonymised_orders: int = 0
    """Orders kept for the figures only: service, unit, status, times, rating."""
    texts: repo.TextCounts | None = None
    """The resident's messages kept for staff (unmet needs, remarks, 转人工), photos
    and campaign subscriptions."""
    erasure_pending: bool = False
    """They asked to erase their information; the rest goes when their open orders close."""


async def kept_about(
    session: AsyncSession,
    community_id: str,
    resident_id: int,
    *,
    periods: Periods | None = None,
) -> Kept | None:
    """What is kept about the resident (None: no such resident in the community)."""
    resident = await session.get(models.Resident, resident_id)
    if resident is None or resident.community_id != community_id:
        return None
    periods = periods or Periods()
    orders = await repo.orders_of(session, resident_id)
    open_orders, closed, anonymised = [], [], 0
    for o in orders:
        shown = KeptOrder(o.code, o.title, OrderStatus(o.status).label)
        if o.status in OPEN_STATUSES:
            open_orders.append(shown)
        elif o.contact_removed:
            anonymised += 1
        else:
            closed.append(ClosedOrder(shown, o.last_moved + dt.timedelta(days=periods.contact)))
    pending = any(
        r.resident_id == resident_id for r in await session.scalars(repo.unfinished_requests())
    )
    return Kept(
        name=resident.name or None,
        phone=resident.phone,
        building=resident.building,
        open_orders=open_orders,
        closed_orders=closed,
        anonymised_orders=anonymised,
        texts=await repo.text_counts(session, community_id, resident.openid, resident_id),
        erasure_pending=pending,
    )
