"""The daily digest to staff: orders that are stuck and notifications not delivered.

Once a day, at ``DIGEST_TIME`` in the community's time zone (after the quiet hours
when it falls in them), staff are sent one message (through the community's own
unit, like every staff alert) listing:

* stuck orders: open, and either not accepted within the unit's promised time
  (``accept_within_hours`` in the catalog) or already 督办, or accepted and
  unchanged for ``STALE_DAYS`` days;
* orders with a notification that was not delivered, and why.

Once means once: the day's digest is claimed by an outbox row keyed by the community
and the local date (``digest:<community>:<date>``), written in the transaction that
writes the message itself. A second run, a restart, or another process finds the key
and sends nothing. A day with nothing to report is claimed all the same (the row
only writes the digest to the log), and staff are not messaged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.jobs.failures import reason_zh
from bot.orders import effects
from catalog.model import Catalog
from storage.order_status import OrderStatus
from storage.repositories import deliveries, outbox

log = logging.getLogger(__name__)

STALE_DAYS = 7
"""An accepted order unchanged this many days is stuck."""
LISTED = 10
"""Orders named in each part of the digest; the rest are counted."""

NOT_ACCEPTED = {
    OrderStatus.SUBMITTED,
    OrderStatus.DISPATCHED,
    OrderStatus.RETURNED,
    OrderStatus.ESCALATED,
}


def why_stuck(order: deliveries.OpenOrder, catalog: Catalog, now: dt.datetime) -> str | None:
    """Why an open order is stuck, in words; None when it is not."""
    status = OrderStatus(order.status)
    if status is OrderStatus.ESCALATED:
        return "已督办，还没有接单"
    if status in NOT_ACCEPTED:
        hours = next((u.accept_within_hours for u in catalog.units if u.id == order.unit_key), 24)
        if now - order.created_at > dt.timedelta(hours=hours):
            return f"超过{hours:g}小时没有接单"
        return None
    if now - order.updated_at > dt.timedelta(days=STALE_DAYS):
        return f"{status.label}后{STALE_DAYS}天没有进展"
    return None


def compose(
    orders: list[deliveries.OpenOrder], catalog: Catalog, now: dt.datetime, day: dt.date
) -> list[str]:
    """The digest's lines; just the heading when there is nothing to report."""
    stuck = [(o, why) for o in orders if (why := why_stuck(o, catalog, now))]
    undelivered = [o for o in orders if o.causes]
    lines = [f"【每日提醒】{day.month}月{day.day}日"]
    if stuck:
        lines.append(f"超时的订单 {len(stuck)} 个：")
        lines += [f"· {o.code} {o.title}（{o.unit_name}）：{why}" for o, why in stuck[:LISTED]]
        if len(stuck) > LISTED:
            lines.append(f"……还有 {len(stuck) - LISTED} 个")
    if undelivered:
        lines.append(f"通知没送到的订单 {len(undelivered)} 个：")
        for o in undelivered[:LISTED]:
            cause, channel = o.causes[0]
            lines.append(f"· {o.code} {o.title}（{o.unit_name}）：{reason_zh(cause, channel)}")
        if len(undelivered) > LISTED:
            lines.append(f"……还有 {len(undelivered) - LISTED} 个")
    if len(lines) > 1:
        lines.append("请到工作台查看处理。")
    return lines


class Digest:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalogs: Callable[[str], Catalog | None],
        communities: Callable[[], Collection[str]],
        policy: effects.Policy,
        clock: Clock,
        at: dt.time | None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._catalogs = catalogs
        self._communities = communities
        self._policy = policy
        self._clock = clock
        self._at = at
        self._done: dict[str, dt.date] = {}
        """The last day each community's digest was found claimed (saves a query a
        minute for the rest of that day)."""

    async def run_once(self) -> int:
        """Send the day's digest of each community whose time has come; how many were
        claimed by this run."""
        if self._at is None:
            return 0
        claimed = 0
        for community in self._communities():
            catalog = self._catalogs(community)
            if catalog is not None:
                claimed += await self._one(community, catalog)
        return claimed

    async def _one(self, community: str, catalog: Catalog) -> int:
        assert self._at is not None
        now = self._clock.now()
        worktime = self._policy.worktime(catalog)
        local = now.astimezone(worktime.zone)
        day = local.date()
        at = self._at
        if worktime.in_quiet_hours(dt.datetime.combine(day, at, worktime.zone)):
            at = worktime.quiet_end  # a time inside the quiet hours: when they end
        if self._done.get(community) == day or local.time() < at:
            return 0
        if worktime.in_quiet_hours(now):
            return 0  # staff are not woken: sent when the quiet hours end
        key = f"digest:{community}:{day.isoformat()}"
        async with self._sessionmaker.begin() as session:
            lines = compose(await deliveries.open_orders(session, community), catalog, now, day)
            text = "\n".join(lines) if len(lines) > 1 else f"{lines[0]} 没有超时或没送到的订单"
            first = await outbox.enqueue(
                session,
                community_id=community,
                key=key,
                channel="log",
                target="staff",
                payload={"title": "每日提醒", "text": text, "channel": {"type": "log"}},
            )
            if first and len(lines) > 1:
                await effects.notify_staff(session, catalog, key, lines)
        self._done[community] = day
        if first:
            log.info("daily digest %s claimed (%d lines)", key, len(lines))
        return int(first)
