"""代办式 proxy orders: staff order on behalf of a resident who has no smartphone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.model import Catalog
from storage import models
from storage.repositories import ordering, residents
from storage.repositories.catalog import live_catalog


class ProxyOrderError(Exception):
    """The order cannot be placed. The message names the option and value at fault
    (English, for the CLI); ``for_staff`` says it in Chinese for the console's form,
    and ``field`` is the option at fault (``item``, ``session``), where the console
    shows it."""

    def __init__(self, message: str, for_staff: str) -> None:
        super().__init__(message)
        self.for_staff = for_staff
        option = message.split(":", 1)[0]
        self.field = option[2:] if option.startswith("--") else None


@dataclass(frozen=True)
class ProxyPlan:
    """A proxy order checked and ready to place (by ``bot.orders.domain``)."""

    catalog: Catalog
    item: models.Item
    resident: models.Resident
    slot_id: int | None
    answers: dict[str, Any]

    def summary(self, order: models.Order, *, slot_key: str | None) -> dict[str, Any]:
        """The order placed, for people (the CLI prints it)."""
        item = self.catalog.item(self.item.key)
        return {
            "code": order.code,
            "item": item.id,
            "item_title": item.title,
            "unit": self.catalog.unit(item.unit).name,
            "status": order.status,
            "resident": self.answers["name"],
            "session": slot_key,  # the CLI's JSON key
            "placed_by": order.placed_by,
        }


async def check_proxy_order(
    session: AsyncSession,
    *,
    item_key: str,
    name: str,
    phone: str,
    building: str | None,
    slot_key: str | None,
    people: int,
    community_id: str | None = None,
) -> ProxyPlan:
    """Check a proxy order against the live catalog (``ProxyOrderError`` naming what is
    wrong) and find or create the resident without WeChat it is for."""
    catalog = await live_catalog(session, community_id)
    if catalog is None:
        raise ProxyOrderError(
            "no catalog imported yet: run `order-menu catalog import FILE`",
            "服务清单还没有导入，请联系管理员。",
        )
    community = catalog.community_id
    if not catalog.has_item(item_key):
        known = ", ".join(i.id for i in catalog.items[:8])
        raise ProxyOrderError(
            f"--item: no item '{item_key}' (items include: {known}, …)",
            "没有这个服务项目，请从列表里选择。",
        )
    item = catalog.item(item_key)
    if item.confidential:
        # Only the resident files a confidential report, and only its unit sees it:
        # placed by staff, the report (and who made it) would pass through staff.
        raise ProxyOrderError(
            f"--item: '{item_key}' is confidential; only the resident can file it, "
            "through the official account",
            f"「{item.title}」是保密事项，不能由工作人员代办。"
            "请居民本人通过公众号提交，内容只有承办单位能看到。",
        )
    row = await ordering.item_row(session, community, item_key)
    upcoming: list[ordering.SlotOption] = []
    if item.weekly:
        # Weekly classes become dated slots (w<n>-<date>) with places, as they do
        # when a resident books by chat: a proxy order takes a place like any other.
        zone = ZoneInfo(catalog.document.community.timezone)
        upcoming = await ordering.upcoming_slots(session, row, item.weekly, zone)
        if slot_key is None:
            keys = [o.key for o in upcoming[:6]]
            raise ProxyOrderError(
                f"--session: weekly item '{item_key}' needs one of: {', '.join(keys)}",
                f"「{item.title}」每周都有，需要选一次参加的时间，请在场次列表里选一场。",
            )

    slot_id = None
    if slot_key is not None:
        found = await session.scalar(
            select(models.ItemSlot).where(
                models.ItemSlot.item_id == row.id,
                models.ItemSlot.key == slot_key,
                models.ItemSlot.retired_at.is_(None),
            )
        )
        if found is None:
            keys = [s.id for s in item.slots] or [o.key for o in upcoming[:6]]
            raise ProxyOrderError(
                f"--session: item '{item_key}' has no session '{slot_key}'"
                + (f" (sessions: {', '.join(keys)})" if keys else " (it has no dated sessions)"),
                f"「{item.title}」没有这个场次"
                + ("，请在场次列表里重新选择。" if keys else "，它不需要选场次。"),
            )
        slot_id = found.id
    elif item.slots:
        keys = [s.id for s in item.slots]
        raise ProxyOrderError(
            f"--session: item '{item_key}' needs one of: {', '.join(keys)}",
            f"「{item.title}」需要选择场次，请在场次列表里选一场。",
        )

    resident = await residents.proxy_resident(
        session, community, name=name, phone=phone, building=building
    )
    answers = {"name": name, "phone": phone, "building": building, "people": people}
    return ProxyPlan(catalog, row, resident, slot_id, answers)


def slot_full(slot_key: str | None, full: ordering.SlotFull) -> ProxyOrderError:
    return ProxyOrderError(
        f"--session: '{slot_key}' has only {full.remaining} place(s) left",
        f"这个场次只剩 {full.remaining} 个名额了。",
    )
