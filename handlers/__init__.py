"""Conversation and commands: one router per module, included in a fixed order.

The order is the order of precedence:

1. ``start``: following, unfollowing, 帮助 - always available.
2. ``orders``: 我的订单, 取消订单, 评价, 转人工 - at any time, even mid-form; and
   photos or places about an order placed a little earlier.
3. ``ordering``: the ordering conversation (entry points, then its states).
4. ``media``: whatever is left of voice, images, links and quiet events.
"""

from __future__ import annotations

from bot.dispatch import Router

EXPIRED_NOTICE = "（刚才没办完的预约已经超过30分钟，我先帮您取消了。）"


def routers() -> list[Router]:
    from handlers import media, ordering, orders, start

    return [start.router, orders.router, ordering.router, media.router]
