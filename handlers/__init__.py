"""Conversation and commands: one router per module, included in a fixed order.

The order is the order of precedence:

0. ``emergency``: danger now (fire, someone collapsed, fraud just happened …) is
   answered with what to do at once, in any state, before anything else.
   ``long_texts``: a message longer than the bot reads is kept for staff (unless it is
   an answer mid-form or reads as a confidential report) and
   answered politely, before any other filter works through it.
1. ``start``: following, unfollowing, 帮助 - always available.
   ``campaign_events``: WeChat's report on a campaign's mass send (no reply).
2. ``units``: partner units' members: 绑定, 接单/开始/完成/退回 + code, 待办.
   ``visits``: grid workers' door-to-door visits: 走访 (+ address and outcome),
   走访待办, 跟进完成, and the list-and-choose conversation.
   ``subscriptions``: 订阅 / 退订 / 退订全部 / 我的订阅 campaign topics.
   ``erasure``: 删除我的信息 and its confirmation, in any state.
   ``waitlist``: 要 / 不要了 answering a place freed from a waiting list (other
   messages with those words pass through it to the routers after it).
   ``handoff_thread``: while a resident's 转人工 is open, their texts go to its
   thread for staff (see ``handlers.handoff_thread``).
3. ``privacy``: 我的信息, 撤回同意 - at any time, even mid-form (a withdrawal mid-form
   makes the rest of the form ask again); 同意 outside a form.
   ``orders``: 我的订单, 取消订单, 评价, 转人工 - at any time, even mid-form; and
   photos or places about an order placed a little earlier.
   ``notices``: a notice staff published (5栋今日停水) answers a message about the same
   thing from a resident there, once, before any order is taken; 报修 then still
   places it (other messages pass through it to the routers after it).
4. ``ordering``: the ordering conversation (the menu, requests for a service, then
   its states); ``dialogue``: what residents do besides ordering (greetings, thanks,
   outcomes of orders, ratings and cancellations in words, questions, complaints,
   small talk) and its short confirmations. A message that does not answer a
   pending question of either is handed back to the top (``Redispatch``).
5. ``media``: whatever is left of voice, images, links and quiet events.
"""

from __future__ import annotations

from bot.dispatch import Context, Router
from bot.wechat.inbound import Incoming


async def pass_to(rest: Router, msg: Incoming, ctx: Context) -> str | None:
    """The message to the first handler of ``rest`` that wants it, as if the router
    passing it on had never stopped it (see ``handlers.waitlist``)."""
    await ctx.read()  # the routers after may filter on the reading
    resolved = rest.resolve(msg, ctx)
    if resolved is None:
        return None
    handler, arguments, _ = resolved
    return await handler(**arguments)


EXPIRED_NOTICE = "（刚才没办完的预约已经超过30分钟，我先帮您取消了。）"
BOOKING_STATES = frozenset({"order.form", "order.summary"})
"""States of a booking half made: the only ones whose timeout is worth a word."""


def routers() -> list[Router]:
    from handlers import (
        campaign_events,
        dialogue,
        emergency,
        erasure,
        handoff_thread,
        long_texts,
        media,
        notices,
        ordering,
        orders,
        privacy,
        start,
        subscriptions,
        units,
        visits,
        waitlist,
    )

    later = [ordering.router, dialogue.router, media.router]
    residents = [privacy.router, orders.router, notices.router(later), *later]
    thread = handoff_thread.router(residents)
    return [
        emergency.router,
        long_texts.router,
        start.router,
        campaign_events.router,
        units.router,
        visits.router,
        subscriptions.router,
        erasure.router,
        waitlist.router([thread]),
        thread,
        *residents,
    ]
