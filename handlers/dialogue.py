"""Everything a resident does besides asking for a service (see ``catalog.acts``).

Greetings get a short welcome and the menu; thanks a warm word, and praise naming a
unit or an order is kept for that unit (evidence for 动态考评); an outcome of an order
(修好了很满意 / 还在漏) reaches that order instead of starting a new one: 没解决 about a
completed order (the 回访's question) reopens it to the same unit; a bare rating
(5分) rates the order just completed; calling an order off in one's own words
(我妈去不了了，不去义诊了) asks to confirm and cancels it; a question is answered from
the catalog's FAQ or handed to staff; a complaint about the service goes to staff;
news and small talk get a friendly word. None of these lands on the 需求清单.

These handlers run when the resident is in no conversation; in the middle of one, the
conversation hands such a message here (``Redispatch``) after leaving its question.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import ActIs, Context, ConversationHandler, Predicate, Redispatch
from bot.orders import domain, effects
from bot.wechat.inbound import Incoming
from catalog import answers
from catalog.acts import Act
from catalog.model import Catalog
from catalog.understanding import Reading
from handlers import ordering, orders, staff, texts
from handlers.orders import rate_as_resident
from storage.order_status import (
    CANCELLABLE_BY_RESIDENT,
    OPEN_STATUSES,
    IllegalTransition,
    OrderStatus,
)
from storage.repositories import ordering as repo
from storage.repositories.ordering import RecentOrder
from storage.types import utcnow

CONFIRM_CANCEL = "feedback.cancel"
PICK_CANCEL = "feedback.pick_cancel"
ASK_STARS = "feedback.stars"

conversation = ConversationHandler("dialogue", [CONFIRM_CANCEL, PICK_CANCEL, ASK_STARS])
router = conversation

RECENT = dt.timedelta(days=30)
"""How far back an outcome, a rating or a complaint may refer to an order."""
PRAISE_AFTER = dt.timedelta(days=3)
"""Thanks to 师傅 within this long after an order was served are praise for its unit."""
_WORKER = re.compile("师傅|医生|大夫|民警|警官|律师|老师|志愿者|小伙子|姑娘|阿姨")
"""Someone who serves an order: thanks to them, naming no unit, go to the latest one."""


async def _orders(session: AsyncSession, ctx: Context) -> list[RecentOrder]:
    """The resident's orders touched in the last 30 days, newest first."""
    return await repo.orders_touched_since(
        session, ctx.community_id, ctx.openid, since=utcnow() - RECENT
    )


def _about(reading: Reading, orders: list[RecentOrder]) -> list[RecentOrder]:
    """The orders the message is about: those of the service it names (none when it
    names another), or all when it names no service (还在漏)."""
    named = {c.item for c in reading.match.candidates}
    if reading.match.terms:
        mentioned = [o for o in orders if o.item in named]
        if mentioned:
            return mentioned
        return []
    return orders


def _unit_name(catalog: Catalog, unit_key: str) -> str:
    try:
        return catalog.unit(unit_key).name
    except KeyError:
        return "办理的单位"


# --- greetings, acknowledgements, small talk ---------------------------------------------------


@conversation.entry.on(ActIs(Act.GREETING))
async def greeting(ctx: Context) -> str:
    return ordering.offer_categories(ctx, need="", intro=texts.greeting(ctx.catalog.community_name))


@conversation.entry.on(ActIs(Act.ACK))
async def acknowledged() -> str:
    return texts.ACK


@conversation.entry.on(ActIs(Act.CHAT))
async def chat(msg: Incoming, ctx: Context, reading: Reading) -> str:
    if reading.unclear:  # not small talk: a message the bot could not place
        return await ordering.handle_request(msg, ctx, reading)
    detail = reading.detail
    return texts.chat(off_scope=detail.off_scope, unclear=False, about_bot=detail.about_bot)


# --- thanks and praise -----------------------------------------------------------------------


@conversation.entry.on(ActIs(Act.THANKS))
async def thanks(msg: Incoming, ctx: Context, reading: Reading) -> str:
    """Thanks naming a unit, or about an order just served, is praise for that unit."""
    async with ctx.sessionmaker.begin() as session:
        orders = await _orders(session, ctx)
        unit_key = _named_unit(ctx.catalog, msg.text, reading)
        order = None
        if unit_key is None and _WORKER.search(msg.text):
            # 谢谢师傅 after a visit: praise for whoever served the latest order.
            recent = utcnow() - PRAISE_AFTER
            served = [
                o
                for o in orders
                if o.status in (OrderStatus.COMPLETED, OrderStatus.RATED) and o.updated_at > recent
            ]
            order = served[0] if served else None
            unit_key = order.unit if order else None
        if unit_key is None:
            return texts.THANKS
        await staff.remark(
            session, ctx, "praise", unit_key=unit_key, order_id=order.id if order else None
        )
    return texts.praised(_unit_name(ctx.catalog, unit_key))


def _named_unit(catalog: Catalog, text: str, reading: Reading) -> str | None:
    """The unit the message names: by its name, else by the service it talks about."""
    for unit in catalog.units:
        if unit.name in text:
            return unit.id
    if reading.match.decision != "none" and reading.match.terms:
        top = reading.match.candidates[0]
        return catalog.item(top.item).unit
    return None


# --- outcomes and ratings --------------------------------------------------------------------


@conversation.entry.on(ActIs(Act.OUTCOME))
async def outcome(msg: Incoming, ctx: Context, reading: Reading) -> str:
    async with ctx.sessionmaker() as session:
        orders = _about(reading, await _orders(session, ctx))
    done = [o for o in orders if o.status is OrderStatus.COMPLETED and not o.rated]
    live = [o for o in orders if o.status is not OrderStatus.CANCELLED]
    finished = bool(live) and live[0].status in (OrderStatus.COMPLETED, OrderStatus.RATED)
    if reading.detail.satisfied is False and not (
        reading.detail.outcome == "unsolved" and finished
    ):
        # 不满意: an apology and a person, never 「太好了」; then the rating, if due.
        reply = await _complain(msg, ctx, order=done[0] if done else None)
        if not done:
            return reply
        ctx.conversation.set(ASK_STARS, code=done[0].code, title=done[0].title)
        return f"{reply}\n{texts.ASK_STARS}"
    if reading.detail.outcome == "unsolved":
        if not live:
            # No order it could be about: a problem to report, like any request, or,
            # when it speaks of a promise or a visit, a complaint for staff.
            plain = reading.without_orders()
            if plain.act is Act.COMPLAINT:
                return await _complain(msg, ctx, order=None)
            return await ordering.handle_request(msg, ctx, plain)
        order = live[0]
        unit = _unit_name(ctx.catalog, order.unit)
        if finished:  # 回访 answered 没解决: back to the same unit
            try:
                async with ctx.sessionmaker.begin() as session:
                    await reopen(session, ctx, msg, order)
                return texts.reopened(unit, order.title, order.code)
            except IllegalTransition:  # moved meanwhile: passed on as it is now
                pass
        async with ctx.sessionmaker.begin() as session:
            await _pass_on(session, ctx, msg, order, solved=False)
        return texts.outcome_passed_on(unit, order.title)
    if done:
        order = done[0]
        stars = reading.detail.stars or (5 if reading.detail.satisfied else None)
        if reading.detail.outcome == "solved":  # the 回访 is answered: not asked again
            async with ctx.sessionmaker.begin() as session:
                await staff.remark(
                    session, ctx, "outcome", detail="solved", unit_key=order.unit, order_id=order.id
                )
        if stars is None:
            ctx.conversation.set(ASK_STARS, code=order.code, title=order.title)
            return texts.solved_thanks(order.title)
        try:
            async with ctx.sessionmaker.begin() as session:
                await rate_as_resident(session, ctx, order.code, stars, msg.text)
        except IllegalTransition:  # rated meanwhile (another message, the console)
            return texts.THANKS
        return texts.rated_in_words(stars, order.title)
    open_ = [o for o in orders if o.status in OPEN_STATUSES]
    if open_ and reading.detail.outcome == "solved":
        async with ctx.sessionmaker.begin() as session:
            await _pass_on(session, ctx, msg, open_[0], solved=True)
    return texts.THANKS


async def reopen(session: AsyncSession, ctx: Context, msg: Incoming, order: RecentOrder) -> None:
    """没解决 about a completed order: back to the same unit with the resident's words
    (the unit and staff are told by the order domain); kept as an unsolved outcome."""
    await domain.reopen_by_resident(
        session,
        catalog=ctx.catalog,
        policy=ctx.policy,
        now=ctx.clock.now(),
        openid=ctx.openid,
        code=order.code,
        words=msg.text,
    )
    await staff.remark(
        session, ctx, "outcome", detail="unsolved", unit_key=order.unit, order_id=order.id
    )


async def _pass_on(
    session: AsyncSession, ctx: Context, msg: Incoming, order: RecentOrder, *, solved: bool
) -> None:
    """The resident's word on an order reaches the order's unit, and staff when unsolved."""
    first = await staff.remark(
        session,
        ctx,
        "outcome",
        detail="solved" if solved else "unsolved",
        unit_key=order.unit,
        order_id=order.id,
    )
    if not first:
        return
    headline = "居民说已经办好了" if solved else "居民反映问题还没解决"
    lines = [f"【居民反馈】{order.title} 订单号：{order.code}", f"{headline}：{msg.text[:200]}"]
    if solved and order.status is not OrderStatus.COMPLETED:
        lines.append(f"办结后请回复“完成 {order.code} 办理情况”。")
    key = f"outcome:{order.code}:{ctx.message_key}"
    await effects.notify_unit(session, ctx.catalog, order.unit, key, "居民反馈", lines, order.id)
    if not solved:
        await effects.notify_staff(
            session, ctx.catalog, key, lines, ctx.catalog.item(order.item), order.id
        )


@conversation.entry.on(ActIs(Act.RATING))
async def rating(ctx: Context, reading: Reading) -> str:
    return await _rate_latest(ctx, reading)


async def _rate_latest(ctx: Context, reading: Reading) -> str:
    """A bare rating rates the order completed most recently and not yet rated."""
    assert reading.detail.stars is not None
    async with ctx.sessionmaker.begin() as session:
        done = [
            o
            for o in await _orders(session, ctx)
            if o.status is OrderStatus.COMPLETED and not o.rated
        ]
        if not done:
            return texts.NOTHING_TO_RATE
        order = done[0]
        await rate_as_resident(session, ctx, order.code, reading.detail.stars, "")
    return texts.rated_in_words(reading.detail.stars, order.title)


_SO_SO = re.compile("^(?:还行|还可以|还好|一般|凑合|马马虎虎)[吧啊呀了]*$")


def _stars_said(text: str) -> int | None:
    """The answer to 「打几分？」: a number 1–5, or 还行/一般 (3)."""
    said = text.strip().rstrip("。.!！~")
    return answers.parse_choice(said, 5) or (3 if _SO_SO.match(said) else None)


@conversation.state(ASK_STARS).on(Predicate(lambda msg, ctx: _stars_said(msg.text) is not None))
async def stars_given(msg: Incoming, ctx: Context) -> str:
    stars = _stars_said(msg.text)
    assert stars is not None
    data = ctx.conversation.data
    ctx.conversation.clear()
    try:
        async with ctx.sessionmaker.begin() as session:
            await rate_as_resident(session, ctx, data["code"], stars, "")
    except (repo.OrderNotFound, IllegalTransition):
        return texts.NOTHING_TO_RATE
    return texts.rated_in_words(stars, data["title"])


@conversation.state(ASK_STARS).on(ActIs(Act.RATING))
async def stars_in_words(ctx: Context, reading: Reading) -> str:
    ctx.conversation.clear()
    return await _rate_latest(ctx, reading)


# --- cancelling in one's own words -------------------------------------------------------------


@conversation.entry.on(ActIs(Act.CANCEL))
async def cancel_in_words(msg: Incoming, ctx: Context, reading: Reading) -> str:
    async with ctx.sessionmaker() as session:
        orders = await _orders(session, ctx)
    cancellable = [o for o in orders if o.status in CANCELLABLE_BY_RESIDENT]
    about = _about(reading, cancellable)
    if not about:
        if reading.detail.asks_new:  # 老人来不了，能上门办吗: a request, not a cancellation
            return await ordering.handle_request(msg, ctx, reading.without_orders())
        return texts.NOTHING_TO_CANCEL
    if len(about) == 1:
        order = about[0]
        ctx.conversation.set(CONFIRM_CANCEL, code=order.code)
        return texts.confirm_cancel(order.code, order.title, _when(ctx, order))
    choices = about[:5]
    ctx.conversation.set(PICK_CANCEL, codes=[o.code for o in choices])
    return texts.which_to_cancel([f"{o.code} {o.title}{_when(ctx, o)}" for o in choices])


def _when(ctx: Context, order: RecentOrder) -> str:
    if order.starts_at is None:
        return ""
    local = order.starts_at.astimezone(ZoneInfo(ctx.catalog.document.community.timezone))
    return f"，{local.month}月{local.day}日{local:%H:%M}"


_KEEP = re.compile("不取消|别取消|不用取消|先不|还是去|还是要|还去|算了|不了")
_CANCEL_IT = re.compile("取消|退掉|不去了|不要了")


def _keeps(text: str) -> bool:
    """不是 / 不取消了 / 还是去吧: the order stays."""
    return answers.is_no(text) or _KEEP.search(text) is not None


def _confirms(text: str) -> bool:
    """是 / 取消吧 / 确认取消 / 对，取消: cancel it."""
    return not _keeps(text) and (answers.is_yes(text) or _CANCEL_IT.search(text) is not None)


@conversation.state(CONFIRM_CANCEL).on(Predicate(lambda msg, ctx: _confirms(msg.text)))
async def cancel_confirmed(ctx: Context) -> str:
    code = ctx.conversation.data["code"]
    ctx.conversation.clear()
    return await orders.cancel(ctx, code)


@conversation.state(PICK_CANCEL).on(
    Predicate(
        lambda msg, ctx: (
            answers.parse_choice(msg.text, len(ctx.conversation.data["codes"])) is not None
        )
    )
)
async def cancel_picked(msg: Incoming, ctx: Context) -> str:
    codes: list[str] = ctx.conversation.data["codes"]
    picked = answers.parse_choice(msg.text, len(codes))
    assert picked is not None
    ctx.conversation.clear()
    return await orders.cancel(ctx, codes[picked - 1])


@conversation.state(CONFIRM_CANCEL).on(Predicate(lambda msg, ctx: _keeps(msg.text)))
@conversation.state(PICK_CANCEL).on(Predicate(lambda msg, ctx: _keeps(msg.text)))
async def keep_order(ctx: Context) -> str:
    ctx.conversation.clear()
    return texts.KEEP_ORDER


@conversation.fallbacks.on(Predicate(lambda msg, ctx: bool(msg.text)))
async def something_else(ctx: Context) -> str:
    """Not an answer to the question asked here: the pending question is dropped and
    the message is handled as what it is."""
    ctx.conversation.clear()
    raise Redispatch()


# --- questions and complaints ------------------------------------------------------------------


@conversation.entry.on(ActIs(Act.QUESTION))
async def question(msg: Incoming, ctx: Context, reading: Reading) -> str:
    answer = reading.answer
    if answer is not None and reading.offer is not None:
        item = ctx.catalog.item(reading.offer)
        return ordering.offer_after_answer(ctx, item, answer=answer, need=msg.text)
    if answer is not None:
        return answer
    async with ctx.sessionmaker.begin() as session:
        await staff.hand_to_staff(session, ctx, f"【居民提问】{msg.text}")
    return texts.QUESTION_HANDED_OFF


@conversation.entry.on(ActIs(Act.COMPLAINT))
async def complaint(msg: Incoming, ctx: Context, reading: Reading) -> str:
    """Handed to staff; counted against a unit only when it names the unit's service."""
    order = None
    if reading.match.terms:
        async with ctx.sessionmaker() as session:
            named = {c.item for c in reading.match.candidates}
            orders = [o for o in await _orders(session, ctx) if o.item in named]
        order = orders[0] if orders else None
    return await _complain(msg, ctx, order=order)


async def _complain(msg: Incoming, ctx: Context, *, order: RecentOrder | None) -> str:
    """Kept for staff (with the unit of the order it is about) and handed to a person."""
    about = f"（订单 {order.code} {order.title}）" if order else ""
    async with ctx.sessionmaker.begin() as session:
        await staff.remark(
            session,
            ctx,
            "complaint",
            unit_key=order.unit if order else None,
            order_id=order.id if order else None,
        )
        await staff.hand_to_staff(session, ctx, f"【居民意见】{msg.text}{about}")
    return texts.COMPLAINT
