"""What an order change causes: notifications (outbox) and reminders, written in the
same transaction as the change itself.

Every function here takes the caller's session: the order change, the messages it
causes and the reminders it schedules are committed together or not at all. Their
keys carry the id of the order event that caused them (``OrderFacts.event_id``): a
retried request finds its effects already there, while a second dispatch to the same
unit, or a second acceptance after a return, is a new event with effects of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.worktime import WorkTime, parse_span
from catalog.model import Catalog
from catalog.schema import Item
from storage import models
from storage.order_status import OrderStatus
from storage.repositories import outbox, reminders, units

RESIDENT = "resident"
"""Outbox channel of messages to a resident (customer-service, else template)."""


SLOT_EVE = "session_eve"
"""Kind (and key prefix) of the reminder on the eve of a booked slot: stored in
``reminders``, so it keeps the name it was first stored under."""


@dataclass(frozen=True)
class Policy:
    """The delays and calendars reminders follow (from the settings)."""

    remind_after_hours: float = 4.0
    escalate_after_hours: float = 8.0
    rate_ask_after_hours: float = 2.0
    slot_reminder_time: dt.time = dt.time(20, 0)
    working_hours: tuple[dt.time, dt.time] = (dt.time(9), dt.time(18))
    quiet_hours: tuple[dt.time, dt.time] = (dt.time(22), dt.time(8))
    waitlist_hold_hours: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            remind_after_hours=settings.remind_after_hours,
            escalate_after_hours=settings.escalate_after_hours,
            rate_ask_after_hours=settings.rate_ask_after_hours,
            slot_reminder_time=dt.time.fromisoformat(settings.session_reminder_time),
            working_hours=parse_span(settings.working_hours),
            quiet_hours=parse_span(settings.quiet_hours),
            waitlist_hold_hours=settings.waitlist_hold_hours,
        )

    def worktime(self, catalog: Catalog) -> WorkTime:
        return WorkTime(
            ZoneInfo(catalog.document.community.timezone),
            day_start=self.working_hours[0],
            day_end=self.working_hours[1],
            quiet_start=self.quiet_hours[0],
            quiet_end=self.quiet_hours[1],
        )


@dataclass(frozen=True)
class OrderFacts:
    """What the messages about an order say (loaded once by the caller)."""

    order: models.Order
    item: Item
    unit: str
    """The catalog id of the unit the order is dispatched to now (re-dispatch moves it
    away from the item's own unit)."""
    openid: str | None
    """The resident's WeChat, None for proxy orders (代办)."""
    phone: str | None
    starts_at: dt.datetime | None
    location: str | None
    event_id: int
    """The order's latest event: the change these facts are loaded to announce."""


async def order_placed(
    session: AsyncSession, catalog: Catalog, policy: Policy, facts: OrderFacts, now: dt.datetime
) -> None:
    order, item = facts.order, facts.item
    lines = [f"【新订单】{item.title}", f"订单号：{order.code}"]
    lines += _details(catalog, facts)
    lines.append(f"请回复“接单 {order.code}”接单，办不了请回复“退回 {order.code} 原因”。")
    event = facts.event_id
    await notify_unit(
        session, catalog, facts.unit, f"placed:{order.code}:{event}", "新订单", lines, order.id
    )
    for co_unit in item.co_units:
        lead = catalog.unit(facts.unit).name
        co_lines = [f"【协办】{item.title}（{lead}牵头）", f"订单号：{order.code}"]
        co_lines += _details(catalog, facts)
        await notify_unit(
            session,
            catalog,
            co_unit,
            f"co:{order.code}:{event}:{co_unit}",
            "协办订单",
            co_lines,
            order.id,
        )

    worktime = policy.worktime(catalog)
    for kind, hours in (
        ("accept_remind", policy.remind_after_hours),
        ("escalate", policy.escalate_after_hours),
    ):
        # Keyed by the dispatch: every dispatch (to another unit, or back to the first)
        # starts its own clocks; the runner skips reminders meant for a unit the order
        # has left.
        await reminders.schedule(
            session,
            community_id=order.community_id,
            key=f"{kind}:{order.code}:{facts.unit}:{event}",
            kind=kind,
            order_id=order.id,
            due_at=worktime.add_working_hours(now, hours),
            note=facts.unit,
        )
    if facts.starts_at is not None and facts.openid is not None:
        local = facts.starts_at.astimezone(worktime.zone)
        eve = dt.datetime.combine(
            local.date() - dt.timedelta(days=1), policy.slot_reminder_time, worktime.zone
        )
        await reminders.schedule(
            session,
            community_id=order.community_id,
            key=f"{SLOT_EVE}:{order.code}",
            kind=SLOT_EVE,
            order_id=order.id,
            due_at=eve.astimezone(dt.UTC),
        )


async def order_cancelled(
    session: AsyncSession, catalog: Catalog, facts: OrderFacts, *, by_resident: bool
) -> None:
    """The unit need not come: told to its members."""
    order = facts.order
    why = "居民已取消这个订单" if by_resident else "这个订单已取消"
    lines = [f"【取消】{facts.item.title} 订单号：{order.code}", f"{why}，不用再上门了。"]
    key = f"cancelled:{order.code}:{facts.event_id}"
    await notify_unit(session, catalog, facts.unit, key, "订单取消", lines, order.id)


async def order_escalated(
    session: AsyncSession, catalog: Catalog, facts: OrderFacts, reason: str | None, *, overdue: bool
) -> None:
    """Staff are alerted (督办), once per escalation: an overdue order names its unit
    and the reason; one escalated by a colleague gives their note."""
    unit = catalog.unit(facts.unit).name
    said = f"{unit}{reason or '超时未接单'}" if overdue else f"督办说明：{reason or '未填写'}"
    lines = [f"【督办】{facts.item.title} 订单号：{facts.order.code}", f"{said}，请社区协调处理。"]
    key = f"escalate:{facts.order.code}:{facts.event_id}"
    await notify_staff(session, catalog, key, lines, facts.item, facts.order.id)


RESIDENT_NEWS = {
    OrderStatus.ACCEPTED: "已被{unit}接单，工作人员会尽快联系您。",
    OrderStatus.IN_SERVICE: "{unit}已经开始为您服务了。",
    OrderStatus.COMPLETED: (
        "已经办完了。办得怎么样？直接回复几分（1到5分，比如“5分”），或者说说您的意见就行。"
    ),
    OrderStatus.RETURNED: "需要重新安排，社区正在为您协调，请稍等。",
    OrderStatus.CLOSED: "已经关闭。有疑问请发“转人工”。",
}


async def order_changed(
    session: AsyncSession,
    catalog: Catalog,
    policy: Policy,
    facts: OrderFacts,
    new: OrderStatus,
    now: dt.datetime,
    *,
    note: str | None = None,
) -> None:
    order, item = facts.order, facts.item
    unit = catalog.unit(facts.unit).name
    news = RESIDENT_NEWS.get(new)
    if news is not None and facts.openid is not None:
        text = f"您的订单 {order.code}（{item.title}）" + news.format(unit=unit, code=order.code)
        if new is OrderStatus.COMPLETED and note:
            text += f"\n办理情况：{note}"
        await notify_resident(
            session,
            catalog,
            policy,
            facts.openid,
            f"{new.value}:{order.code}:{facts.event_id}",
            text,
            now,
            order.id,
        )
    if new is OrderStatus.COMPLETED and facts.openid is not None:
        await reminders.schedule(
            session,
            community_id=order.community_id,
            key=f"rate_ask:{order.code}:{facts.event_id}",
            kind="rate_ask",
            order_id=order.id,
            due_at=now + dt.timedelta(hours=policy.rate_ask_after_hours),
        )
    if new is OrderStatus.RETURNED:
        lines = [
            f"【退回】{item.title} 订单号：{order.code}",
            f"{unit}退回了订单：{note or '未说明原因'}",
        ]
        key = f"returned:{order.code}:{facts.event_id}"
        await notify_staff(session, catalog, key, lines, item, order.id)


async def notify_unit(
    session: AsyncSession,
    catalog: Catalog,
    unit_id: str,
    key: str,
    title: str,
    lines: list[str],
    order_id: int | None = None,
) -> None:
    """One outbox row per channel the unit declared (log when it declared none); for
    the ``wechat`` channel, one row per bound member, so that a failure to reach one
    member is retried for that member alone. ``order_id``: the order it is about (a
    failure to deliver it is shown on the order, see ``bot.jobs.failures``)."""
    unit = catalog.unit(unit_id)
    channels: list[dict[str, Any]] = [c.model_dump() for c in unit.channels] or [{"type": "log"}]
    text = "\n".join(lines)
    for index, channel in enumerate(channels):
        members: list[str | None] = [None]
        if channel["type"] == "wechat":
            bound = await units.active_members(session, catalog.community_id, unit_id)
            members = list(bound) or [None]
        for member in members:
            suffix = f":{member}" if member else ""
            await outbox.enqueue(
                session,
                community_id=catalog.community_id,
                key=f"{key}:{unit_id}:{index}{suffix}",
                channel=str(channel["type"]),
                target=unit_id,
                payload={"title": title, "text": text, "channel": channel, "member": member},
                order_id=order_id,
            )


async def notify_staff(
    session: AsyncSession,
    catalog: Catalog,
    key: str,
    lines: list[str],
    item: Item | None = None,
    order_id: int | None = None,
) -> None:
    """Alert community staff: the community's own unit (kind 社区), else the log.

    Confidential items (廉情监督反映) are told to staff without their content."""
    if item is not None and item.confidential:
        lines = [lines[0].split(" 订单号")[0] + "（保密事项，详情请在管理后台以管理员身份查看）"]
    staff = next((u for u in catalog.units if "社区" in u.kind), None)
    if staff is None:
        await outbox.enqueue(
            session,
            community_id=catalog.community_id,
            key=f"{key}:staff",
            channel="log",
            target="staff",
            payload={"title": "提醒", "text": "\n".join(lines), "channel": {"type": "log"}},
            order_id=order_id,
        )
        return
    await notify_unit(session, catalog, staff.id, key, "提醒", lines, order_id)


async def notify_resident(
    session: AsyncSession,
    catalog: Catalog,
    policy: Policy,
    openid: str,
    key: str,
    text: str,
    now: dt.datetime,
    order_id: int | None = None,
) -> None:
    """A message to a resident, held back until the quiet hours end."""
    await outbox.enqueue(
        session,
        community_id=catalog.community_id,
        key=f"resident:{key}",
        channel=RESIDENT,
        target=openid,
        payload={"text": text},
        not_before=policy.worktime(catalog).after_quiet_hours(now),
        order_id=order_id,
    )


def _details(catalog: Catalog, facts: OrderFacts) -> list[str]:
    zone = ZoneInfo(catalog.document.community.timezone)
    answers = facts.order.answers or {}
    lines = []
    if facts.starts_at is not None:
        local = facts.starts_at.astimezone(zone)
        where = f" {facts.location}" if facts.location else ""
        lines.append(f"时间：{local:%m月%d日 %H:%M}{where}")
    if answers.get("people", 1) and int(answers.get("people", 1)) > 1:
        lines.append(f"人数：{answers['people']}")
    building = next((v for k, v in answers.items() if k in ("building", "where") and v), None)
    if building:
        lines.append(f"地址：{building}")
    if facts.phone:
        lines.append(f"电话：{facts.phone}")
    if facts.order.description:
        lines.append(f"情况：{facts.order.description[:200]}")
    return lines


async def load_facts(session: AsyncSession, catalog: Catalog, order: models.Order) -> OrderFacts:
    """What the messages need about ``order``."""
    return (await load_many_facts(session, catalog, [order]))[order.id]


async def load_many_facts(
    session: AsyncSession, catalog: Catalog, orders: list[models.Order]
) -> dict[int, OrderFacts]:
    """Facts of many orders in three queries, whatever their number (reminder batches)."""
    if not orders:
        return {}
    items: dict[int, Item] = {}
    for item_id, key, title, category, unit_key in await session.execute(
        select(
            models.Item.id,
            models.Item.key,
            models.Item.title,
            models.Item.category,
            models.Unit.key,
        )
        .join(models.Unit, models.Item.unit_id == models.Unit.id)
        .where(models.Item.id.in_({o.item_id for o in orders}))
    ):
        # An item since dropped from the catalog (retired) keeps its orders readable:
        # they are described from the database row instead.
        items[item_id] = (
            catalog.item(key)
            if catalog.has_item(key)
            else Item.model_construct(id=key, title=title, category=category, unit=unit_key)
        )
    residents = {
        r.id: r
        for r in await session.scalars(
            select(models.Resident).where(models.Resident.id.in_({o.resident_id for o in orders}))
        )
    }
    unit_keys = dict(
        (
            await session.execute(
                select(models.Unit.id, models.Unit.key).where(
                    models.Unit.id.in_({o.unit_id for o in orders})
                )
            )
        ).all()
    )
    booked_ids = {o.slot_id for o in orders if o.slot_id is not None}
    slots = (
        {
            s.id: s
            for s in await session.scalars(
                select(models.ItemSlot).where(models.ItemSlot.id.in_(booked_ids))
            )
        }
        if booked_ids
        else {}
    )
    latest = dict(
        (
            await session.execute(
                select(models.OrderEvent.order_id, func.max(models.OrderEvent.id))
                .where(models.OrderEvent.order_id.in_([o.id for o in orders]))
                .group_by(models.OrderEvent.order_id)
            )
        ).all()
    )
    facts = {}
    for order in orders:
        resident = residents[order.resident_id]
        booked = slots.get(order.slot_id) if order.slot_id is not None else None
        facts[order.id] = OrderFacts(
            order=order,
            item=items[order.item_id],
            unit=unit_keys[order.unit_id],
            openid=resident.openid,
            phone=resident.phone,
            starts_at=booked.starts_at if booked else None,
            location=booked.location if booked else None,
            event_id=latest.get(order.id, 0),
        )
    return facts
