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
from storage.repositories import followers, outbox, reminders, units

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
    followup_again_days: float = 0.0
    """Days after completion of the second 回访 (0: none)."""
    contact_kept_days: int = 180
    """What the personal-information notice promises: days after an order closes
    before its contact details are anonymised (RETAIN_CONTACT_DAYS)."""
    photo_kept_days: int = 90
    """Likewise for photos and places (RETAIN_PHOTO_DAYS)."""

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
            followup_again_days=settings.followup_again_days,
            contact_kept_days=settings.retain_contact_days,
            photo_kept_days=settings.retain_photo_days,
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
    unit_name: str
    """Its name, from the database: a unit since retired from the catalog is still
    named in what is said about its orders."""
    openid: str | None
    """The resident's WeChat, None for proxy orders (代办)."""
    phone: str | None
    starts_at: dt.datetime | None
    location: str | None
    event_id: int
    """The order's latest event: the change these facts are loaded to announce."""
    households: int = 1
    """Households that reported it: the reporter and those who joined (我也遇到)."""


async def order_placed(
    session: AsyncSession, catalog: Catalog, policy: Policy, facts: OrderFacts, now: dt.datetime
) -> None:
    order, item = facts.order, facts.item
    lines = [f"【新订单】{item.title}", f"订单号：{order.code}"]
    lines += _details(catalog, facts)
    lines.append(f"请回复“接单 {order.code}”接单。")
    if item.replies and item.replies.accept:
        lines += [
            f"接单时可附常用回复：“接单 {order.code} {n}”：{reply}"
            for n, reply in enumerate(item.replies.accept, start=1)
        ]
    lines.append(
        f"不归贵单位管请回复“不归我管 {order.code}”，办不了请回复“办不了 {order.code} 原因”。"
    )
    event = facts.event_id
    await notify_unit(
        session, catalog, facts.unit, f"placed:{order.code}:{event}", "新订单", lines, order.id
    )
    for co_unit in item.co_units:
        lead = facts.unit_name
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
    unit = facts.unit_name
    said = f"{unit}{reason or '超时未接单'}" if overdue else f"督办说明：{reason or '未填写'}"
    lines = [f"【督办】{facts.item.title} 订单号：{facts.order.code}", f"{said}，请社区协调处理。"]
    key = f"escalate:{facts.order.code}:{facts.event_id}"
    await notify_staff(session, catalog, key, lines, facts.item, facts.order.id)


FOLLOWUP_QUESTION = "问题解决了吗？回复“解决了”或“没解决”就行。"
"""回访, in plain words: solved or not (没解决 sends the order back to the unit)."""
FOLLOWUP_AGAIN = "followup_again"
"""Kind of the reminder of the second 回访 (``FOLLOWUP_AGAIN_DAYS`` after completion)."""

RESIDENT_NEWS = {
    OrderStatus.ACCEPTED: "已被{unit}接单，工作人员会尽快联系您。",
    OrderStatus.IN_SERVICE: "{unit}已经开始为您服务了。",
    OrderStatus.COMPLETED: "{unit}说已经办好了。" + FOLLOWUP_QUESTION,
    OrderStatus.RETURNED: "需要重新安排，社区正在为您协调，请稍等。",
    OrderStatus.MISROUTED: "需要转给更合适的单位，社区正在为您安排，请稍等。",
    OrderStatus.NOT_POSSIBLE: (
        "，很抱歉，{unit}这次没能办成。社区工作人员会帮您想想别的办法，也可以回复“转人工”找人帮忙。"
    ),
    OrderStatus.CLOSED: "已经关闭。有疑问请发“转人工”。",
}

FOLLOWER_NEWS = {
    OrderStatus.COMPLETED: "{unit}说已经办好了。如果还没解决，请回复“转人工”告诉我们。",
}
"""What those who joined an order hear instead, where it differs: 回访 (解决了/没解决)
is the reporter's; a follower who still has the problem tells staff."""


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
    unit = facts.unit_name
    news = RESIDENT_NEWS.get(new)
    event = facts.event_id
    said = ""
    if new is OrderStatus.ACCEPTED and note:
        said = f"\n单位留言：{note}"
    if new is OrderStatus.COMPLETED and note:
        said = f"\n办理情况：{note}"
    if new is OrderStatus.NOT_POSSIBLE and note:
        said = f"\n单位说明：{note}"
    if news is not None and facts.openid is not None:
        text = f"您的订单 {order.code}（{item.title}）" + news.format(unit=unit, code=order.code)
        await notify_resident(
            session,
            catalog,
            policy,
            facts.openid,
            f"{new.value}:{order.code}:{event}",
            text + said,
            now,
            order.id,
        )
    news = FOLLOWER_NEWS.get(new, news)
    if news is not None:
        # Those who joined the order (我也遇到) hear of each change too, each once:
        # keyed by the event and their follower row.
        for follower, openid in await followers.followers_of(session, order.id):
            text = f"您反映的问题（订单号 {order.code}，{item.title}）" + news.format(
                unit=unit, code=order.code
            )
            await notify_resident(
                session,
                catalog,
                policy,
                openid,
                f"{new.value}:{order.code}:{event}:f{follower}",
                text + said,
                now,
                order.id,
            )
    if new is OrderStatus.COMPLETED and facts.openid is not None:
        await reminders.schedule(
            session,
            community_id=order.community_id,
            key=f"rate_ask:{order.code}:{event}",
            kind="rate_ask",
            order_id=order.id,
            due_at=now + dt.timedelta(hours=policy.rate_ask_after_hours),
        )
        if policy.followup_again_days > 0:
            await reminders.schedule(
                session,
                community_id=order.community_id,
                key=f"{FOLLOWUP_AGAIN}:{order.code}:{event}",
                kind=FOLLOWUP_AGAIN,
                order_id=order.id,
                due_at=now + dt.timedelta(days=policy.followup_again_days),
                note=str(event),  # the completion it follows up
            )
    title = f"{item.title} 订单号：{order.code}"
    if new is OrderStatus.REOPENED:
        lines = [
            f"【重办】{title}",
            f"居民说问题还没解决：{note or '未说明'}",
            *_details(catalog, facts),
            f"请尽快再去看看，办好后回复“完成 {order.code} 办理情况”。",
        ]
        await notify_unit(
            session, catalog, facts.unit, f"reopened:{order.code}:{event}", "重办", lines, order.id
        )
        staff = [
            f"【重办】{title}",
            f"居民说{unit}办的还没解决：{note or '未说明'}，已交回{unit}。",
        ]
        await notify_staff(
            session, catalog, f"reopened:{order.code}:{event}", staff, item, order.id
        )
    elif new is OrderStatus.NOT_POSSIBLE:
        lines = [f"【办不了】{title}", f"{unit}说办不了：{note or '未说明原因'}，居民已收到说明。"]
        await notify_staff(
            session, catalog, f"not_possible:{order.code}:{event}", lines, item, order.id
        )
    elif new is OrderStatus.MISROUTED:
        lines = [
            f"【待改派】{title}",
            f"{unit}说这件事不归他们管：{note or '未说明'}。请在工作台改派给合适的单位。",
        ]
        await notify_staff(
            session, catalog, f"misrouted:{order.code}:{event}", lines, item, order.id
        )
    elif new is OrderStatus.RETURN_ASKED:
        lines = [
            f"【退单申请】{title}",
            f"{unit}申请退单：{note or '未说明原因'}。",
            "请在工作台审核：同意后改派，不同意则仍由该单位办理。",
        ]
        await notify_staff(
            session, catalog, f"return_asked:{order.code}:{event}", lines, item, order.id
        )
    elif new is OrderStatus.RETURNED:
        lines = [f"【退单已同意】{title}", "社区同意了退单，这个订单不用再办了，谢谢。"]
        await notify_unit(
            session, catalog, facts.unit, f"returned:{order.code}:{event}", "退单", lines, order.id
        )


async def return_refused(
    session: AsyncSession, catalog: Catalog, facts: OrderFacts, note: str | None
) -> None:
    """Staff did not approve the 退单: the unit is told it still has the order."""
    order = facts.order
    lines = [
        f"【退单未同意】{facts.item.title} 订单号：{order.code}",
        f"社区没有同意退单{('：' + note) if note else ''}。",
        "订单仍由贵单位办理，有困难请联系社区。",
    ]
    key = f"return_refused:{order.code}:{facts.event_id}"
    await notify_unit(session, catalog, facts.unit, key, "退单", lines, order.id)


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
    unit = catalog.find_unit(unit_id)
    if unit is None:  # retired from the catalog: its bound members, if any, still hear
        channels: list[dict[str, Any]] = [{"type": "wechat"}]
    else:
        channels = [c.model_dump() for c in unit.channels] or [{"type": "log"}]
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
    if facts.households > 1:
        lines.append(f"共{facts.households}户反映")
    return lines


async def load_facts(session: AsyncSession, catalog: Catalog, order: models.Order) -> OrderFacts:
    """What the messages need about ``order``."""
    return (await load_many_facts(session, catalog, [order]))[order.id]


async def load_many_facts(
    session: AsyncSession, catalog: Catalog, orders: list[models.Order]
) -> dict[int, OrderFacts]:
    """Facts of many orders in a fixed number of queries, whatever their number
    (reminder batches)."""
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
    unit_rows = {
        unit_id: (key, name)
        for unit_id, key, name in await session.execute(
            select(models.Unit.id, models.Unit.key, models.Unit.name).where(
                models.Unit.id.in_({o.unit_id for o in orders})
            )
        )
    }
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
    reported = await followers.households(session, [o.id for o in orders])
    facts = {}
    for order in orders:
        resident = residents[order.resident_id]
        booked = slots.get(order.slot_id) if order.slot_id is not None else None
        facts[order.id] = OrderFacts(
            order=order,
            item=items[order.item_id],
            unit=unit_rows[order.unit_id][0],
            unit_name=unit_rows[order.unit_id][1],
            openid=resident.openid,
            # The order's own answer: consented to for this order, and gone with its
            # contact details (the resident's copy may belong to another, open order).
            phone=(order.answers or {}).get("phone") or None,
            starts_at=booked.starts_at if booked else None,
            location=booked.location if booked else None,
            event_id=latest.get(order.id, 0),
            households=reported[order.id],
        )
    return facts
