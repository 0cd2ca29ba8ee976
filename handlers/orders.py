"""Commands about one's orders, available at any time: 我的订单, 取消订单, 评价, 转人工;
and photos or places sent about an order placed a little earlier."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import Click, Command, Context, Kind, Router, StateIs
from bot.orders import domain, shared
from bot.privacy import consent
from bot.wechat import MY_ORDERS
from bot.wechat.inbound import Incoming
from handlers import privacy_texts, staff, texts
from storage.order_status import IllegalTransition, OrderStatus
from storage.repositories import ordering as repo

router = Router("orders")

STARS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
RATING = re.compile(r"^([A-Za-z0-9]{4,8})\s*([1-5一二两三四五])\s*(?:星|分|颗星)?\s*(.*)$", re.S)


@router.on(Command("我的订单", "订单", "查订单", "查询订单", "我的预约") | Click(MY_ORDERS))
async def my_orders(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        orders = await repo.recent_orders(session, ctx.community_id, ctx.openid)
    if not orders:
        return texts.NO_ORDERS
    zone = ZoneInfo(ctx.catalog.document.community.timezone)
    lines = ["您最近的订单："]
    for order in orders:
        when = ""
        if order.starts_at is not None:
            local = order.starts_at.astimezone(zone)
            when = f"，{local.month}月{local.day}日{local:%H:%M}"
        lines.append(f"{order.code} {order.title}：{order.status.label}{when}")
    lines.append(texts.ORDERS_HOW)
    return "\n".join(lines)


@router.on(Command("取消订单", "撤销订单", "取消预约"))
async def cancel_order(ctx: Context, args: str) -> str:
    if not args:
        return texts.CANCEL_HOW
    return await cancel(ctx, args)


async def cancel(ctx: Context, code_said: str) -> str:
    """Cancel one of the resident's orders and tell its unit, in one transaction (by the
    command 取消订单 CODE, or after the resident said it in words and confirmed)."""
    try:
        async with ctx.sessionmaker.begin() as session:
            # The unit is told, and a freed place offered to the waiting list, by the
            # domain in this same transaction.
            order = await domain.cancel_by_resident(
                session,
                catalog=ctx.catalog,
                policy=ctx.policy,
                now=ctx.clock.now(),
                openid=ctx.openid,
                code=code_said,
            )
            code = order.code
            handed_over = order.status != OrderStatus.CANCELLED
    except repo.OrderNotFound:
        # An order the resident joined (我也遇到): only their own interest is withdrawn.
        async with ctx.sessionmaker.begin() as session:
            left = await shared.leave(
                session, ctx.catalog, openid=ctx.openid, code=code_said, now=ctx.clock.now()
            )
        return texts.no_such_order(code_said) if left is None else texts.left_shared(left)
    except IllegalTransition as refused:
        return texts.cannot_cancel(refused.code, refused.current)
    return texts.handed_over(code) if handed_over else texts.cancelled(code)


@router.on(Command("评价", "评分", "打分"))
async def rate_order(ctx: Context, args: str) -> str:
    found = RATING.match(args)
    if found is None:
        return texts.RATE_HOW
    code, stars_text, comment = found.groups()
    stars = int(stars_text) if stars_text.isdigit() else STARS[stars_text]
    try:
        async with ctx.sessionmaker.begin() as session:
            await rate_as_resident(session, ctx, code, stars, comment.strip())
    except repo.OrderNotFound:
        return texts.no_such_order(code)
    except IllegalTransition as refused:
        return texts.cannot_rate(refused.code, refused.current)
    return texts.rated(stars)


async def rate_as_resident(
    session: AsyncSession, ctx: Context, code: str, stars: int, comment: str
) -> None:
    """The resident rates one of their orders (by 评价 CODE, or in words)."""
    await domain.rate(
        session,
        catalog=ctx.catalog,
        policy=ctx.policy,
        now=ctx.clock.now(),
        openid=ctx.openid,
        code=code,
        stars=stars,
        comment=comment[:500],
    )


@router.on(Command("转人工", "人工", "人工服务", "找工作人员", "找人工"))
async def hand_off(msg: Incoming, ctx: Context, args: str) -> str:
    """Staff take over: the request is kept for the console and acknowledged."""
    context = ""
    data = ctx.conversation.data
    if ctx.conversation.state is not None and data.get("item"):
        try:
            context = f"（当时正在预约「{ctx.catalog.item(data['item']).title}」）"
        except KeyError:
            context = "（当时正在预约）"
    async with ctx.sessionmaker.begin() as session:
        await staff.hand_to_staff(session, ctx, (args or msg.text) + context, asked=True)
    ctx.conversation.clear()
    return texts.HANDED_OFF


@router.on(Kind("image", "location"), StateIs(None))
async def attach_to_recent_order(msg: Incoming, ctx: Context) -> str | None:
    """A photo or place sent soon after reporting something goes with that report."""
    async with ctx.sessionmaker.begin() as session:
        order = await repo.latest_open_order(
            session, ctx.community_id, ctx.openid, within=dt.timedelta(hours=24)
        )
        if order is None:
            return texts.IMAGE_RECEIVED if msg.kind == "image" else texts.LOCATION_RECEIVED
        if not await consent.has_consent(session, ctx.community_id, ctx.openid):
            return privacy_texts.PHOTO_NOT_KEPT
        await repo.attach(session, order.id, ctx.message_key, msg.kind, msg.attachment)
        code = order.code
    return texts.attached(code)
