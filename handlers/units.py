"""Partner units by chat: bind with an invite code (a grid worker's code binds to
a grid the same way, see ``handlers.visits``), then 接单 / 开始 / 完成 / 待办, and
the honest outcomes: 办不了 (with a reason), 不归我管 (back to staff to re-dispatch),
退单 (also 退回; with a reason, until staff approve it the order stays the unit's).

Only bound members may act, and only on their own unit's orders; every action goes
through the order domain, and the resident is told (through the outbox). Binding
sends the new member the unit's notifications of open orders that failed because
nobody was bound yet.
"""

from __future__ import annotations

import re

from bot.dispatch import Command, Context, Predicate, Router
from bot.orders import domain, effects
from bot.wechat.inbound import Incoming
from handlers import texts, visit_texts
from storage import models
from storage.order_status import IllegalTransition, OrderStatus
from storage.repositories import deliveries, ordering
from storage.repositories import units as repo
from storage.repositories.users import audit

router = Router("units")

ACTIONS = {
    "接单": OrderStatus.ACCEPTED,
    "开始": OrderStatus.IN_SERVICE,
    "完成": OrderStatus.COMPLETED,
    "退单": OrderStatus.RETURN_ASKED,
    "退回": OrderStatus.RETURN_ASKED,
    "办不了": OrderStatus.NOT_POSSIBLE,
    "不归我管": OrderStatus.MISROUTED,
}
PICKED = re.compile(r"[1-9]")
"""A note that is one digit picks a 常用回复 of the item (``完成 码 1``)."""
NEEDS_REASON = frozenset({OrderStatus.RETURN_ASKED, OrderStatus.NOT_POSSIBLE})
ACTION = re.compile(
    r"^\s*(接单|开始|完成|退单|退回|办不了|不归我管)\s*([A-Za-z0-9]{6})\s*(.*)$", re.S
)


@router.on(Command("绑定", "绑定单位"))
async def bind(msg: Incoming, ctx: Context, args: str) -> str:
    if not args:
        return texts.BIND_HOW
    try:
        async with ctx.sessionmaker.begin() as session:
            bound = await repo.redeem(session, ctx.community_id, args.split()[0], msg.openid)
            unit = bound.unit
            if unit is not None:
                # What failed for want of a bound member goes to this one, in the
                # binding's own transaction: bound and not told is never the outcome.
                await deliveries.resend_to_new_member(
                    session, ctx.community_id, unit.key, msg.openid, ctx.clock.now()
                )
    except repo.InviteError as refused:
        return texts.bind_refused(refused.reason)
    if unit is None:
        grids = {g.id: g.name for g in ctx.catalog.document.community.grids}
        return visit_texts.bound(grids.get(bound.grid_key or "", "本网格"))
    return texts.bound(unit.name)


@router.on(Predicate(lambda msg, ctx: ACTION.match(msg.text) is not None))
async def act(msg: Incoming, ctx: Context) -> str:
    found = ACTION.match(msg.text)
    assert found is not None
    word, code, note = found[1], found[2].upper(), found[3].strip()
    wanted = ACTIONS[word]
    if wanted in NEEDS_REASON and not note:
        return texts.needs_reason(word, code)
    async with ctx.sessionmaker.begin() as session:
        mine = await repo.memberships(session, ctx.community_id, msg.openid)
        if not mine:
            return texts.NOT_A_MEMBER
        order = await session.scalar(
            ordering.select_order(ctx.community_id, code).with_for_update()
        )
        if order is None:
            return texts.no_unit_order(code)
        if order.unit_id not in {m.unit_id for m in mine}:
            return texts.not_your_order(code)
        item = (await effects.load_facts(session, ctx.catalog, order)).item
        if PICKED.fullmatch(note):
            # 完成 码 1: the item's first 常用回复, as if typed.
            offered = item.replies.for_word(word) if item.replies else []
            picked = int(note)
            if not 1 <= picked <= len(offered):
                return texts.no_such_reply(word, code, offered)
            note = offered[picked - 1]
        try:
            await domain.transition(
                session,
                order,
                wanted,
                actor=f"unit:{msg.openid}",
                reason=note or None,
                catalog=ctx.catalog,
                policy=ctx.policy,
                now=ctx.clock.now(),
            )
        except IllegalTransition as refused:
            return texts.cannot_act(word, code, refused.current.label)
        facts = await effects.load_facts(session, ctx.catalog, order)
        where = _where(order)
        if word == "接单" and (facts.phone or where):
            # The unit's member is shown the resident's contact details in chat: a view
            # recorded like one on the portal (个人信息保护法), in this message's
            # transaction, so a retried message records it once.
            shown = "、".join(w for w, there in (("电话", facts.phone), ("地址", where)) if there)
            await audit(
                session, ctx.community_id, f"{facts.unit_name}（微信）", "view.contact", code, shown
            )
        reply = texts.acted(word, code, facts.item.title, facts.phone, where)
        if word == "接单" and item.replies and item.replies.complete:
            reply += "\n" + texts.replies_how("完成", code, item.replies.complete)
        return reply


@router.on(Command("待办", "我的待办", "单位待办"))
async def todo(msg: Incoming, ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        mine = await repo.memberships(session, ctx.community_id, msg.openid)
        if not mine:
            return texts.NOT_A_MEMBER
        rows = await repo.open_orders(session, [m.unit_id for m in mine])
    if not rows:
        return "现在没有待办的订单。"
    lines = ["待办订单："]
    lines += [f"{code} {title}：{OrderStatus(status).label}" for code, title, status in rows]
    lines.append("回复“接单 订单号”接单，“完成 订单号 办理情况”办结。")
    lines.append("不归贵单位管回复“不归我管 订单号”，办不了回复“办不了 订单号 原因”。")
    return "\n".join(lines)


def _where(order: models.Order) -> str | None:
    answers = order.answers or {}
    value = answers.get("building") or answers.get("where")
    return str(value) if value else None
