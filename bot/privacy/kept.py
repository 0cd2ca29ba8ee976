"""What is kept about one resident, and until when: for 我的信息 and the console.

Read-only: :func:`kept_about` lists the resident's contact details (and every
address an order still holds), the orders still holding them (open ones until they
close; closed ones until the retention period runs out), what remains of anonymised
orders (for the figures), how many of their texts, photos and subscriptions are kept,
the topics they subscribed to, and their latest answer to the notice. It is the one
answer to "what do you keep about me", in chat (我的信息) and at the console.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy import consent as consents
from bot.privacy.erasure import KeptOrder
from bot.privacy.retention import Periods
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus
from storage.repositories import consents as consent_repo
from storage.repositories import privacy as repo
from storage.repositories.subscriptions import topics_of


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
    addresses: list[str] = field(default_factory=list)
    """The resident's building and those orders still holding contact details hold."""
    topics: set[str] = field(default_factory=set)
    """Campaign topics they subscribed to."""
    consent: models.Consent | None = None
    """Their latest answer to the notice (None: never asked)."""
    current: bool = False
    """That answer is a yes to the notice as it reads now."""


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
    addresses = [resident.building] if resident.building else []
    for o in orders:
        said = o.answers.get("building")
        if not o.contact_removed and isinstance(said, str) and said and said not in addresses:
            addresses.append(said)
        shown = KeptOrder(o.code, o.title, OrderStatus(o.status).label)
        if o.status in OPEN_STATUSES:
            open_orders.append(shown)
        elif o.contact_removed:
            anonymised += 1
        else:
            closed.append(ClosedOrder(shown, o.last_moved + dt.timedelta(days=periods.contact)))
    latest = await consent_repo.latest(session, resident_id)
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
        addresses=addresses,
        topics=await topics_of(session, resident_id),
        consent=latest,
        current=consents.is_current(latest),
    )
