"""Reading orders for people: the CLI now, the console and the unit portal later."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import models
from storage.order_status import OrderStatus


@dataclass(frozen=True)
class OrderRow:
    code: str
    item: str
    item_title: str
    unit: str
    status: OrderStatus
    resident: str
    phone: str | None
    slot: str | None
    """The slot's catalog id (``session`` in JSON, the catalog format's word)."""
    created_at: dt.datetime
    timezone: str
    """The community's time zone, for showing times to people."""

    def local_created_at(self) -> dt.datetime:
        return self.created_at.astimezone(ZoneInfo(self.timezone))

    def as_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "item": self.item,
            "item_title": self.item_title,
            "unit": self.unit,
            "status": self.status.value,
            "resident": self.resident,
            "phone": self.phone,
            "session": self.slot,
            "created_at": self.created_at.isoformat(),
        }


async def list_orders(
    session: AsyncSession,
    *,
    community_id: str | None = None,
    status: OrderStatus | None = None,
    limit: int = 200,
) -> list[OrderRow]:
    """Newest first, with the names needed to show them; one query, no lazy loads."""
    item = aliased(models.Item)
    unit = aliased(models.Unit)
    resident = aliased(models.Resident)
    item_slot = aliased(models.ItemSlot)
    query = (
        select(
            models.Order,
            item.key,
            item.title,
            unit.key,
            resident,
            item_slot.key,
            models.Community.timezone,
        )
        .join(models.Community, models.Order.community_id == models.Community.id)
        .join(item, models.Order.item_id == item.id)
        .join(unit, models.Order.unit_id == unit.id)
        .join(resident, models.Order.resident_id == resident.id)
        .outerjoin(item_slot, models.Order.slot_id == item_slot.id)
        .order_by(models.Order.created_at.desc(), models.Order.id.desc())
        .limit(limit)
    )
    if community_id is not None:
        query = query.where(models.Order.community_id == community_id)
    if status is not None:
        query = query.where(models.Order.status == status.value)
    rows = await session.execute(query)
    return [
        OrderRow(
            code=order.code,
            item=item_key,
            item_title=item_title,
            unit=unit_key,
            status=OrderStatus(order.status),
            resident=res.name or res.openid or f"resident-{res.id}",
            phone=res.phone,
            slot=slot_key,
            created_at=order.created_at,
            timezone=timezone,
        )
        for order, item_key, item_title, unit_key, res, slot_key, timezone in rows
    ]
