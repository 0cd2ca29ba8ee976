"""Notifications that were not delivered, on the staff console.

The board marks each order with one (通知没送到), the front of the console counts the
open ones and links to them, and the order page says for each why, in plain words
(``bot.jobs.failures.reason_zh``), with a 重新发送 button. Pressing it puts the same
notification back to be sent (once: see ``storage.repositories.deliveries``), checks
the role and the CSRF token, and is written to the audit log.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keys
from bot.jobs.failures import CHANNELS_ZH, reason_zh
from bot.web.auth import checked_form, require
from bot.web.params import path_id
from storage.repositories import deliveries
from storage.repositories import units as unit_members
from storage.repositories.users import audit

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STAFF = ("staff", "admin")


def setup(app: web.Application) -> None:
    app.add_routes(routes)


async def board_counts(session: AsyncSession, order_ids: list[int]) -> dict[int, int]:
    """Per order on the board, how many of its notifications were not delivered."""
    return await deliveries.undelivered_by_order(session, order_ids)


async def front_count(session: AsyncSession, community_id: str) -> int:
    """Open orders with a notification not delivered (the count on the console)."""
    return await deliveries.open_orders_undelivered(session, community_id)


async def for_order(session: AsyncSession, order_id: int, zone: ZoneInfo) -> list[dict[str, Any]]:
    """An order's notifications not delivered, or being sent again, as the page
    shows them."""
    shown = []
    for row in await deliveries.of_order(session, order_id):
        shown.append(
            {
                "id": row.id,
                "what": row.title or "通知",
                "to": CHANNELS_ZH.get(row.channel, "单位"),
                "why": reason_zh(row.cause, row.channel),
                "at": f"{row.created_at.astimezone(zone):%m-%d %H:%M}",
                "resending": row.resending,
            }
        )
    return shown


@routes.post("/console/orders/{code}/deliveries/{id}/resend")
async def resend(request: web.Request) -> web.StreamResponse:
    """重新发送: one of the order's notifications, put back to be sent now."""
    from bot.web.console import _order_for, _order_page  # the console's own order rules

    user = require(request, *STAFF)
    row_id = path_id(request)
    await checked_form(request, user)
    code = request.match_info["code"]
    now = request.app[keys.CLOCK].now()
    try:
        async with request.app[keys.SESSIONMAKER].begin() as session:
            order = await _order_for(session, user, code, lock=True)
            row = await deliveries.resend_one(session, user.community_id, order.id, row_id, now)
            if row is None:
                raise _NotResent("这条通知已经在重新发送，或者已经送到了。")
            if row.cause == deliveries.NO_MEMBER and not await unit_members.active_members(
                session, user.community_id, row.target
            ):
                # Sent now it would only fail again: it goes out by itself on binding.
                raise _NotResent(
                    "这个单位还没有人绑定微信。请先把邀请码发给单位的联系人，绑定后会自动补发。"
                )
            what = str((row.payload or {}).get("title") or "通知")
            await audit(session, user.community_id, user.username, "resend", order.code, what)
    except _NotResent as refused:
        # Shown after the transaction ended (rolled back), as the console does.
        log.info("order %s: notification %d not resent: %s", code, row_id, refused)
        return await _order_page(request, user, code, str(refused), 409)
    raise web.HTTPFound(f"/console/orders/{order.code}")


class _NotResent(Exception):
    """Why 重新发送 did nothing, in words for the page."""
