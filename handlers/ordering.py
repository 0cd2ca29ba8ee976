"""群众点单: from a need in the resident's words to a placed order, in a few turns.

The conversation (see ``bot.dispatch.conversation``):

* **entry** - a need the matcher is sure of starts the form at once (the reply names
  the service and asks the first question); two or three likely services are
  offered by number; a need nothing fits is kept (需求清单) and the categories are
  offered. ``菜单``/``服务`` (or the menu button) lists the categories.
* **choose_category → choose_item → form → summary**: answers by number or in
  natural words; a wrong answer is asked again with an example.
* ``取消``/``算了``/``退出`` leave from any state; ``确认`` places the order.
* **join** - a shared problem (a leak, a broken lamp) reported where an open order for
  it already is (same building, else same grid): the resident is offered to join it
  (``算我一个``) or to report it on their own (``单独报``); see ``bot.orders.shared``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import (
    ActIs,
    Click,
    Command,
    Context,
    ConversationHandler,
    Kind,
    Predicate,
    Redispatch,
)
from bot.orders import domain, shared
from bot.privacy import consent
from bot.wechat import MENU_SERVICES
from bot.wechat.inbound import Incoming
from catalog import addresses, answers
from catalog.acts import Act
from catalog.forms import EXAMPLES, ask, questions_for
from catalog.matcher import Candidate, MatchResult
from catalog.schema import SLOT_QUESTION, Item, Question
from catalog.understanding import STRONG_MATCH, Reading
from handlers import privacy_texts, staff, texts
from storage.repositories import ordering as repo
from storage.repositories import residents, waitlist
from storage.repositories.inbox import Reason, record_for_inbox
from storage.repositories.needs import record_unmet_need
from storage.types import utcnow

CHOOSE_CATEGORY = "order.category"
CHOOSE_ITEM = "order.item"
FORM = "order.form"
SUMMARY = "order.summary"
JOIN = "order.join"
"""Offered to join an open order for the same problem at the same place (我也遇到)."""

HELD_SLOT = "session"
"""Key of the slot's id in the conversation's ``held`` place (a waiting-list offer):
stored in ``conversation_states``, so it keeps the name states were saved with."""

conversation = ConversationHandler("ordering", [CHOOSE_CATEGORY, CHOOSE_ITEM, FORM, SUMMARY, JOIN])
router = conversation

has_text = Predicate(lambda msg, ctx: bool(msg.text))
text_or_voice = Kind("text", "voice")


# --- entry points ----------------------------------------------------------------------


@conversation.entry.on(
    Command("菜单", "服务", "服务菜单", "点单", "我要点单") | Click(MENU_SERVICES)
)
async def menu(ctx: Context) -> str:
    return offer_categories(ctx, need="")


@conversation.entry.on(text_or_voice, ActIs(Act.REQUEST))
async def request(msg: Incoming, ctx: Context, reading: Reading) -> str:
    return await handle_request(msg, ctx, reading)


async def handle_request(msg: Incoming, ctx: Context, reading: Reading) -> str:
    """A request for a service: the form of the one service it names, a choice of two
    or three, or (nothing fits) the need kept for staff and the menu.

    One plausible service that the matcher would not bet on alone (a single catalog
    word, say) is offered as a question instead: one tap for the resident, and no
    false entry in the list of unmet needs. A message that asks for nothing the
    community does (no word of asking, or shopping and travel) is answered kindly and
    not kept: the 需求清单 holds requests, not small talk.
    """
    match = reading.match
    guess = {"key": ctx.message_key, "text": msg.text}
    if match.decision == "matched" and match.item is not None:
        item = ctx.catalog.item(match.item)
        return await _start_form(ctx, item, need=msg.text, guess=guess)
    top = match.candidates[0] if match.candidates else None
    offered: list[Item] = []
    intro = "您说的可能是下面这几项，请回复序号："
    if match.decision == "ambiguous":
        offered = [ctx.catalog.item(c.item) for c in match.candidates]
    elif top is not None and match.terms and top.score >= ctx.matcher.thresholds.ambiguous:
        offered, intro = [ctx.catalog.item(top.item)], "您要办的是不是这一项？"
    if offered:
        async with ctx.sessionmaker.begin() as session:
            await _keep_for_inbox(session, ctx, msg.text, "ambiguous", [i.id for i in offered])
        return _offer_items(ctx, offered, need=msg.text, intro=intro, guess=guess)
    if not reading.unmet_need:
        if reading.unclear:
            async with ctx.sessionmaker.begin() as session:
                await _keep_for_inbox(session, ctx, msg.text, "none", match.candidates)
        return texts.chat(off_scope=reading.detail.off_scope, unclear=reading.unclear)
    async with ctx.sessionmaker.begin() as session:
        await record_unmet_need(
            session,
            community_id=ctx.community_id,
            result=match,
            catalog_version=ctx.catalog.version,
            openid=msg.openid,
            message_key=ctx.message_key,
        )
        await _keep_for_inbox(session, ctx, msg.text, "none", match.candidates)
    return offer_categories(ctx, need=msg.text, intro=texts.NEED_RECORDED)


async def _keep_for_inbox(
    session: AsyncSession,
    ctx: Context,
    text: str,
    reason: Reason,
    candidates: Sequence[Candidate | str],
    *,
    message_key: str | None = None,
) -> None:
    """A message the bot did not understand, for the staff's learning inbox."""
    await record_for_inbox(
        session,
        community_id=ctx.community_id,
        openid=ctx.openid,
        message_key=message_key or ctx.message_key,
        text=text,
        reason=reason,
        candidates=candidates,
        catalog_version=ctx.catalog.version,
    )


async def _rejected(ctx: Context) -> None:
    """The resident said 不是 or 取消 to the bot's guess: a miss for the learning inbox,
    kept with the message that was misread."""
    data = ctx.conversation.data
    guess = data.get("guess")
    first_answer = ctx.conversation.state == CHOOSE_ITEM or (
        ctx.conversation.state == FORM and data.get("q") == 0
    )
    if not guess or not first_answer:
        return
    items = data.get("options") or [data.get("item")]
    async with ctx.sessionmaker.begin() as session:
        await _keep_for_inbox(
            session, ctx, guess["text"], "rejected", items, message_key=guess["key"]
        )


# --- leaving ---------------------------------------------------------------------------


LEAVE = Command("取消", "算了", "退出", "不办了", "不要了", "不用了")


def _skipping(msg: Incoming, ctx: Context) -> bool:
    """At an optional question, 不用了 / 算了 skip that question, not the whole order."""
    question = _current_question(ctx)
    return question is not None and not question.required and answers.is_skip(msg.text)


def _gone(msg: Incoming, ctx: Context) -> bool:
    """The service being booked or offered left the catalog since (an import
    mid-conversation): every answer would otherwise end in an apology."""
    data = ctx.conversation.data
    wanted = [data["item"]] if data.get("item") else list(data.get("options", []))
    categories = data.get("categories")
    if categories is not None:
        return any(c not in ctx.catalog.categories for c in categories)
    return any(not ctx.catalog.has_item(i) for i in wanted)


@conversation.interrupts.on(Predicate(_gone))
async def service_withdrawn(ctx: Context) -> str:
    """Say so, leave the conversation, and read the message afresh."""
    ctx.conversation.clear()
    raise Redispatch(texts.WITHDRAWN)


@conversation.interrupts.on(LEAVE, Predicate(lambda msg, ctx: not _skipping(msg, ctx)))
async def leave(ctx: Context) -> str:
    await _rejected(ctx)
    ctx.conversation.clear()
    return texts.LEFT


# --- the personal-information notice ----------------------------------------------------

NOTICE = "notice"
"""Key in the form's data: the notice was shown and not yet answered (``ASKED``), or
the resident said no to it in this form (``REFUSED``). ``consent`` holds whether they
agree to the notice as it reads now."""
ASKED, REFUSED = "asked", "refused"
PHOTOS_REFUSED = "photos_refused"
"""Key in the form's data: they said no to the notice shown with a photo, not at a
question for a phone or an address: photos are not kept, the contact questions still
come (with the notice again)."""


def _notice_answer(msg: Incoming, ctx: Context) -> bool:
    asked = ctx.conversation.data.get(NOTICE) == ASKED
    return asked and (consent.agrees(msg.text) or consent.refuses(msg.text))


async def _record_consent(ctx: Context, action: str, method: str, *, contact: bool = True) -> None:
    async with ctx.sessionmaker.begin() as session:
        await consent.answer(
            session,
            community_id=ctx.community_id,
            openid=ctx.openid,
            message_key=ctx.message_key,
            action=action,
            method=method,
            now=ctx.clock.now(),
        )
    data = ctx.conversation.data
    data["consent"] = action == consent.GIVEN
    refused = action == consent.REFUSED
    data[NOTICE] = REFUSED if refused and contact else None
    if refused:
        data[PHOTOS_REFUSED] = True
    ctx.conversation.set(ctx.conversation.state, **data)


@conversation.interrupts.on(Predicate(_notice_answer))
async def notice_answered(msg: Incoming, ctx: Context) -> str:
    """同意 or 不同意 to the notice: recorded, and the form goes on where it was. A no
    skips optional questions for a phone or an address, drops the photos sent, and
    at a question the service cannot do without says kindly what else they can do."""
    given = consent.agrees(msg.text)
    question = _current_question(ctx)
    # A no at a question for a phone or an address refuses those; elsewhere (to the
    # notice shown with a photo, or at the summary) it refuses the photos only.
    contact = question is not None and question.kind in consent.PERSONAL_KINDS
    action = consent.GIVEN if given else consent.REFUSED
    await _record_consent(ctx, action, consent.SAID, contact=contact)
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    if given:
        head = privacy_texts.THANKS
    else:
        head = privacy_texts.REFUSED_PHOTOS if data.pop("attachments", None) else ""
        ctx.conversation.set(ctx.conversation.state, **data)
    if ctx.conversation.state == SUMMARY:
        return f"{head}\n{_summary(ctx, item, data)}".lstrip("\n")
    if question is None:
        return head or privacy_texts.REFUSED_SKIP
    if given or question.kind not in consent.PERSONAL_KINDS:
        return f"{head}\n{_prompt(ctx, question)}".lstrip("\n")
    if question.required:
        ctx.conversation.clear()
        duty = ctx.catalog.document.community.duty_phone
        return privacy_texts.cannot_without(item.title, duty)
    data["q"] += 1
    ctx.conversation.set(FORM, **data)
    return f"{privacy_texts.REFUSED_SKIP}\n{await _ask_next(ctx, item)}"


async def after_withdrawal(ctx: Context) -> str | None:
    """撤回同意 mid-form: nothing collected under the withdrawn consent goes on. The
    answers for a phone or an address and the photos are dropped, the form goes back
    to the first such question and asks it again, with the notice. None: not booking."""
    data = ctx.conversation.data
    if ctx.conversation.state not in (FORM, SUMMARY, JOIN) or "item" not in data:
        return None
    item = ctx.catalog.item(data["item"])
    questions = questions_for(item)
    personal = [n for n, q in enumerate(questions) if q.kind in consent.PERSONAL_KINDS]
    for n in personal:
        data["answers"].pop(questions[n].id, None)
    for key in ("attachments", "remembered", NOTICE, PHOTOS_REFUSED, "misses", "shared"):
        data.pop(key, None)
    data["consent"] = False
    if personal and personal[0] < data["q"]:
        data["q"] = personal[0]
        data.pop("shared_checked", None)  # the place is asked again
    ctx.conversation.set(FORM, **data)
    return await _ask_next(ctx, item, remembered=False)


# --- choosing --------------------------------------------------------------------------


@conversation.state(CHOOSE_CATEGORY).on(has_text)
async def chose_category(msg: Incoming, ctx: Context) -> str:
    categories: list[str] = ctx.conversation.data["categories"]
    picked = answers.parse_choice(msg.text, len(categories))
    if picked is None:
        picked = _by_name(msg.text, categories)
    if picked is None:
        return await _not_a_choice(msg, ctx, texts.pick_a_number(len(categories)))
    category = categories[picked - 1]
    return _offer_items(
        ctx,
        ctx.catalog.items_in(category),
        need=ctx.conversation.data.get("need", ""),
        intro=f"「{category}」有这些服务，请回复序号：",
    )


@conversation.state(CHOOSE_ITEM).on(has_text)
async def chose_item(msg: Incoming, ctx: Context) -> str:
    options: list[str] = ctx.conversation.data["options"]
    titles = [ctx.catalog.item(i).title for i in options]
    picked = answers.parse_choice(msg.text, len(options)) or _by_name(msg.text, titles)
    if picked is None and len(options) == 1 and answers.is_yes(msg.text):
        picked = 1
    if picked is None and len(options) == 1 and answers.is_no(msg.text):
        if ctx.conversation.data.get("answered"):  # 不用了 after an answer: done
            ctx.conversation.clear()
            return texts.ACK
        await _rejected(ctx)
        return offer_categories(ctx, need=ctx.conversation.data.get("need", ""))
    if picked is None:
        return await _not_a_choice(msg, ctx, texts.pick_a_number(len(options)))
    item = ctx.catalog.item(options[picked - 1])
    return await _start_form(ctx, item, need=ctx.conversation.data.get("need", ""))


_TRIED_TO_PICK = re.compile(r"[\d一二两三四五六七八九十第个号项]{1,4}[。.!！]?")


async def _not_a_choice(msg: Incoming, ctx: Context, again: str) -> str:
    """A list was offered and the message picks none of it.

    The list says 「也可以换个说法」: a sentence that is not a pick (a new request, a
    question, an outcome, a cancellation, 好的 or 谢谢 to a greeting's menu) is handled
    as what it is, and the list is left. A pick that failed (a number out of range)
    is asked again, with a way out the third time.
    """
    if _TRIED_TO_PICK.fullmatch(msg.text.strip()):
        return _missed(ctx, again, way_out=texts.WAY_OUT_LIST)
    ctx.conversation.clear()
    raise Redispatch()


# --- the form --------------------------------------------------------------------------


@conversation.state(FORM).on(has_text)
async def answered(msg: Incoming, ctx: Context) -> str:
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    questions = questions_for(item)
    question = questions[data["q"]]
    if question.kind == SLOT_QUESTION and data.get("full") and _wants_waitlist(msg.text):
        return await _join_waitlist(msg, ctx, item, data)
    value, problem = _understand(question, msg.text, data, ctx)
    # Any text fits a free question: make sure it is meant as the answer (谢谢, 5分 or
    # 社区几点上班？ typed at 「要开什么证明？」 is not).
    free = problem is None and value is not None and question.kind in FREE_TEXT
    if free and not _meant_as_answer(await ctx.read(), item, question):
        problem = f"{texts.NOT_UNDERSTOOD}{EXAMPLES.get(question.kind, '')}。\n{ask(question)}"
    if problem is not None:
        return await _not_an_answer(msg, ctx, item, problem, question)
    if question.kind in consent.PERSONAL_KINDS and data.get(NOTICE) == ASKED and value:
        # Told what is kept and how to say no, they answered: consent, recorded as such.
        await _record_consent(ctx, consent.GIVEN, consent.ANSWERED)
    data["answers"][question.id] = value
    data["q"] += 1
    data.pop("misses", None)
    ctx.conversation.set(FORM, **data)
    return await _ask_next(ctx, item)


async def _not_an_answer(
    msg: Incoming, ctx: Context, item: Item, again: str, question: Question | None
) -> str:
    """The message does not answer the pending question (``question``; None: the
    confirmation). What it is decides what happens:

    * an outcome of an earlier order, a rating, a cancellation in words, a complaint:
      handled as that; the order being filled in is left, with a word saying so;
    * a request for another service: the same, and the new request is taken up;
    * a question: answered from the FAQ (or handed to staff), and the pending question
      is asked again, kept;
    * anything else: asked again with an example; the third miss offers a way out
      (skip, 转人工, 取消), so that nothing loops.
    """
    reading = await ctx.read()
    pending = again if question is None else _prompt(ctx, question)
    optional = question is not None and not question.required
    way_out = texts.WAY_OUT_CONFIRM if question is None else None
    if reading.act in (Act.GREETING, Act.ACK, Act.THANKS):
        stay = f"{texts.STAY[reading.act]}\n我们接着来：{pending}"
        return _missed(ctx, stay, optional=optional, way_out=way_out)
    if reading.act is Act.CANCEL:
        # 算了，不去了 said while booking calls off this booking, whatever else is booked.
        await _rejected(ctx)
        ctx.conversation.clear()
        return texts.LEFT
    about_orders = reading.act in (Act.OUTCOME, Act.RATING)
    if reading.act is Act.COMPLAINT or (about_orders and await _has_orders(ctx)):
        ctx.conversation.clear()
        raise Redispatch(texts.DROPPED_NOTE)
    if _another_service(reading, item) and (question is None or question.kind != "notes"):
        ctx.conversation.clear()
        raise Redispatch(texts.NEW_REQUEST_NOTE)
    if reading.detail.off_scope:
        return f"{texts.OFF_SCOPE}\n我们接着来：{pending}"
    if reading.act is Act.QUESTION or reading.detail.question:
        if reading.faq is not None:
            return f"{reading.answer}\n我们接着来：{pending}"
        async with ctx.sessionmaker.begin() as session:
            await staff.hand_to_staff(session, ctx, f"【居民提问】{msg.text}")
        return f"{texts.QUESTION_HANDED_OFF}\n我们接着来：{pending}"
    return _missed(ctx, again, optional=optional, way_out=way_out)


FREE_TEXT = frozenset({"building", "name", "notes", "text"})
"""Question kinds whose answer is free text (no parser to tell an answer from a remark)."""

_NOT_ANSWERS = frozenset(
    {Act.GREETING, Act.ACK, Act.THANKS, Act.OUTCOME, Act.RATING, Act.CANCEL, Act.COMPLAINT}
)


def _meant_as_answer(reading: Reading, item: Item, question: Question) -> bool:
    """A free text is an answer unless it reads as something else: a greeting or
    thanks, a word on an order, a question the FAQ answers, or a clear request for
    another service. At 「还有什么要补充的吗？」 a complaint about the very thing being
    reported (十二点了还在吵，反映了好几次了) is what is asked for."""
    if question.kind == "notes" and reading.act in (Act.COMPLAINT, Act.OUTCOME):
        return True
    if reading.act in _NOT_ANSWERS or reading.faq is not None:
        return False
    match = reading.match
    return not (
        reading.act is Act.REQUEST
        and match.decision == "matched"
        and match.item != item.id
        and match.score >= STRONG_MATCH
    )


def _another_service(reading: Reading, item: Item) -> bool:
    """The message clearly asks for a service other than the one being ordered."""
    if not reading.wants_service or reading.detail.question:
        return False
    match = reading.match
    if match.decision == "matched":
        return match.item != item.id
    return item.id not in {c.item for c in match.candidates}


async def _has_orders(ctx: Context) -> bool:
    """Whether the resident has any order a word on an order could be about."""
    async with ctx.sessionmaker() as session:
        return bool(await repo.recent_orders(session, ctx.community_id, ctx.openid, limit=1))


def _missed(ctx: Context, again: str, *, optional: bool = False, way_out: str | None = None) -> str:
    """Ask again; from the third miss of the same question on, offer a way out."""
    data = ctx.conversation.data
    data["misses"] = data.get("misses", 0) + 1
    ctx.conversation.set(ctx.conversation.state, **data)
    if data["misses"] >= 3:
        if way_out is None:
            way_out = texts.WAY_OUT_OPTIONAL if optional else texts.WAY_OUT_REQUIRED
        return f"{again}\n{way_out}"
    return again


def _prompt(ctx: Context, question: Question) -> str:
    """The pending question as it was asked (with its options, if any)."""
    data = ctx.conversation.data
    if question.kind == SLOT_QUESTION and data.get("offered"):
        return ask(question) + "\n" + _numbered([s["label"] for s in data["offered"]])
    prompt = ask(question) + ("" if question.required else "（可以回复“没有”跳过）")
    if question.kind == "choice":
        prompt += "\n" + _numbered(question.choices)
    return prompt


def _current_question(ctx: Context) -> Question | None:
    if ctx.conversation.state != FORM:
        return None
    data = ctx.conversation.data
    try:
        question: Question = questions_for(ctx.catalog.item(data["item"]))[data["q"]]
    except (KeyError, IndexError):
        return None
    return question


# --- summary and confirmation ------------------------------------------------------------


@conversation.state(SUMMARY).on(Predicate(lambda msg, ctx: answers.is_yes(msg.text)))
async def confirmed(msg: Incoming, ctx: Context) -> str:
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    try:
        async with ctx.sessionmaker.begin() as session:
            order = await _place(session, msg, ctx, item, data)
            code = order.code
    except repo.SlotFull as full:
        return await _slot_full(ctx, item, full.remaining)
    except repo.DuplicateMessage as duplicate:  # the same message, placed by another process
        code = duplicate.code
    ctx.conversation.clear()
    placed = texts.placed(code, item.next_steps)
    return f"{placed}\n{privacy_texts.PHOTOS_NOT_KEPT}" if _photos_wait(data) else placed


@conversation.state(SUMMARY).on(Predicate(lambda msg, ctx: answers.is_no(msg.text)))
async def start_over(ctx: Context) -> str:
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    data.update(q=0, answers={})
    ctx.conversation.set(FORM, **data)
    return "好的，我们重新填一遍。\n" + await _ask_next(ctx, item, remembered=False)


@conversation.state(SUMMARY).on(has_text)
async def unclear_confirmation(msg: Incoming, ctx: Context) -> str:
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    if data.get(ASK_NAME) and _looks_like_name(msg.text) and _is_a_name(await ctx.read()):
        data["answers"][NAME] = msg.text.strip()
        ctx.conversation.set(SUMMARY, **data)
        return f"好的，{msg.text.strip()}。" + _summary(ctx, item, data)
    return await _not_an_answer(msg, ctx, item, texts.CONFIRM_HOW, None)


@conversation.fallbacks.on(Kind("image", "location"))
async def attachment_during_form(msg: Incoming, ctx: Context) -> str:
    """A photo or place sent while ordering is kept and attached to the order."""
    data = ctx.conversation.data
    if not data.get("consent") and (data.get(NOTICE) == REFUSED or data.get(PHOTOS_REFUSED)):
        return privacy_texts.PHOTO_NOT_KEPT
    data.setdefault("attachments", []).append({"kind": msg.kind, **msg.attachment})
    ctx.conversation.set(ctx.conversation.state, **data)
    if not data.get("item"):  # still choosing: the notice comes with the form
        async with ctx.sessionmaker() as session:
            agreed = await consent.has_consent(session, ctx.community_id, ctx.openid)
        return texts.ATTACHMENT_KEPT if agreed else privacy_texts.PHOTO_WHILE_CHOOSING
    if not data.get("consent") and data.get(NOTICE) != ASKED:
        data[NOTICE] = ASKED
        ctx.conversation.set(ctx.conversation.state, **data)
        return privacy_texts.photo_notice(*_notice_terms(ctx))
    return texts.ATTACHMENT_KEPT


def _notice_terms(ctx: Context) -> tuple[str, int, int]:
    """The unit of the service being booked, and how long contact details and photos
    are kept: what the notice says."""
    unit = ctx.catalog.unit(ctx.catalog.item(ctx.conversation.data["item"]).unit)
    return unit.name, ctx.policy.contact_kept_days, ctx.policy.photo_kept_days


# --- helpers -----------------------------------------------------------------------------


def offer_categories(ctx: Context, *, need: str, intro: str = "") -> str:
    """The menu of categories (the resident answers with a number or a name)."""
    categories = ctx.catalog.categories
    kept = ctx.conversation.data.get("attachments", [])  # photos sent while choosing
    ctx.conversation.set(CHOOSE_CATEGORY, categories=categories, need=need, attachments=kept)
    lines = [intro] if intro else []
    lines.append("社区现在能提供这些服务，请回复序号：")
    lines += [f"{n}. {c}" for n, c in enumerate(categories, start=1)]
    lines.append("不需要了请回复“取消”。")
    return "\n".join(lines)


def _offer_items(
    ctx: Context,
    items: list[Item],
    *,
    need: str,
    intro: str,
    guess: dict[str, str] | None = None,
) -> str:
    """Numbered services to choose from; ``guess``: the message they were guessed from
    (a 不是 then goes to the learning inbox)."""
    kept = ctx.conversation.data.get("attachments", [])  # photos sent while choosing
    ctx.conversation.set(
        CHOOSE_ITEM, options=[i.id for i in items], need=need, guess=guess, attachments=kept
    )
    lines = [intro]
    for number, item in enumerate(items, start=1):
        lines.append(f"{number}. {item.title}（{ctx.catalog.unit(item.unit).name}）")
    if len(items) == 1:
        lines.append("是的话请回复“1”或“是”；不是请回复“不是”，我给您看全部服务。")
    else:
        lines.append("都不是的话请回复“取消”，也可以换个说法再说一遍。")
    return "\n".join(lines)


def offer_after_answer(ctx: Context, item: Item, *, answer: str, need: str) -> str:
    """An FAQ answer, then the service the question named, to book in one tap."""
    ctx.conversation.set(CHOOSE_ITEM, options=[item.id], need=need, guess=None, answered=True)
    return f"{answer}\n需要的话，我可以帮您预约「{item.title}」：要办请回复“是”。"


def _by_name(text: str, names: list[str]) -> int | None:
    """A choice made by saying the option (“法律咨询”) rather than its number."""
    said = text.strip().rstrip("。.!！")
    hits = [n for n, name in enumerate(names, start=1) if said and (said in name or name in said)]
    return hits[0] if len(hits) == 1 else None


async def _start_form(
    ctx: Context, item: Item, *, need: str, guess: dict[str, str] | None = None
) -> str:
    unit = ctx.catalog.unit(item.unit)
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        offers = await waitlist.open_offers(session, ctx.community_id, ctx.openid, item_key=item.id)
        agreed = await consent.has_consent(session, ctx.community_id, ctx.openid)
    # A phone kept from before is used only under the notice as it reads now.
    remembered = {"phone": resident.phone} if agreed and resident and resident.phone else {}
    kept = ctx.conversation.data.get("attachments", [])  # photos sent while choosing
    ctx.conversation.set(
        FORM,
        item=item.id,
        need=need,
        q=0,
        answers={},
        remembered=remembered,
        attachments=kept,
        guess=guess,
        consent=agreed,
        **{ASK_NAME: _ask_name(item, resident)},
    )
    intro = f"好的，帮您预约「{item.title}」，由{unit.name}提供。"
    if offers:  # a place freed for this resident from the waiting list: theirs to take
        offer = offers[0]
        zone = ZoneInfo(ctx.catalog.document.community.timezone)
        label = texts.slot_label(offer.starts_at.astimezone(zone), offer.location, None)
        ctx.conversation.data["held"] = {
            "entry": offer.entry_id,
            HELD_SLOT: offer.slot_id,
            "label": label,
        }
        intro = texts.offer_taken(item.title)
    return intro + "\n" + await _ask_next(ctx, item)


async def start_form(ctx: Context, item: Item) -> str:
    """Book ``item`` (the waiting list's 要: the held place is used)."""
    return await _start_form(ctx, item, need="")


async def _ask_next(ctx: Context, item: Item, *, remembered: bool = True) -> str:
    data = ctx.conversation.data
    questions = questions_for(item)
    while data["q"] < len(questions):
        offer = await _offer_to_join(ctx, item, questions)
        if offer is not None:
            return offer
        question = questions[data["q"]]
        known = data.get("remembered", {}).get(question.kind) if remembered else None
        if known and question.kind == "phone":
            data["answers"][question.id] = known  # shown in the summary, changeable there
            data["q"] += 1
            continue
        held = data.get("held")
        if question.kind == SLOT_QUESTION and held is not None:
            data["answers"][question.id] = {"id": held[HELD_SLOT], "label": held["label"]}
            data["q"] += 1
            continue
        if question.kind == SLOT_QUESTION:
            offered = await _offer_slots(ctx, item)
            if not offered:
                return await _no_slots(ctx, item)
            data["offered"] = offered
            ctx.conversation.set(FORM, **data)
            return ask(question) + "\n" + _numbered([s["label"] for s in offered])
        notice = ""
        if question.kind in consent.PERSONAL_KINDS and not data.get("consent"):
            if data.get(NOTICE) == REFUSED:  # not asked again in this form
                if not question.required:
                    data["q"] += 1
                    continue
                ctx.conversation.clear()
                duty = ctx.catalog.document.community.duty_phone
                return privacy_texts.cannot_without(item.title, duty)
            if data.get(NOTICE) != ASKED:
                notice = privacy_texts.notice(*_notice_terms(ctx)) + "\n"
                data[NOTICE] = ASKED
        ctx.conversation.set(FORM, **data)
        prompt = ask(question) + ("" if question.required else "（可以回复“没有”跳过）")
        if question.kind == "choice":
            prompt += "\n" + _numbered(question.choices)
        return notice + prompt
    offer = await _offer_to_join(ctx, item, questions)
    if offer is not None:
        return offer
    notice = ""
    if _photos_wait(data) and data.get(NOTICE) != ASKED:  # asked at the summary, then
        notice = privacy_texts.notice(*_notice_terms(ctx)) + "\n"
        data[NOTICE] = ASKED
    ctx.conversation.set(SUMMARY, **data)
    return notice + _summary(ctx, item, data)


def _photos_wait(data: dict[str, Any]) -> bool:
    """Photos were sent and the resident has neither agreed nor said no to keeping them."""
    return bool(data.get("attachments")) and not data.get("consent")


async def _offer_to_join(ctx: Context, item: Item, questions: list[Question]) -> str | None:
    """Once the place is known (the building answered, or the form done without one),
    an open order for the same shared problem there is offered to join; None if
    there is none (or it was looked for already)."""
    data = ctx.conversation.data
    if data.get("shared_checked") or not item.is_shared_problem:
        return None
    answered = data["answers"]
    said = next(
        (
            str(answered[q.id])
            for q in questions[: data["q"]]
            if q.kind == "building" and answered.get(q.id)
        ),
        None,
    )
    if said is None and data["q"] < len(questions):
        return None
    data["shared_checked"] = True
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        building: str | None
        if said is not None:
            building, grid = said, grid_of(ctx, said)
        elif resident is not None:  # no building asked: where the resident said before
            building, grid = resident.building, resident.grid_key
        else:
            return None
        found = await shared.joinable(
            session,
            ctx.catalog,
            item,
            resident_id=resident.id if resident is not None else None,
            building=building,
            grid=grid,
        )
    if found is None:
        return None
    data["shared"] = {"order": found.order_id, "code": found.code, "building": said}
    ctx.conversation.set(JOIN, **data)
    return texts.shared_offer(found.place, found.code)


JOIN_WORDS = ("算我一个", "算我一份", "算我", "加我一个", "我也是", "一起")
ALONE_WORDS = ("单独", "另报", "自己报", "分开")


@conversation.state(JOIN).on(has_text)
async def join_or_not(msg: Incoming, ctx: Context) -> str:
    data = ctx.conversation.data
    item = ctx.catalog.item(data["item"])
    said = msg.text.strip()
    if any(w in said for w in ALONE_WORDS) or answers.is_no(said):
        data.pop("shared", None)
        ctx.conversation.set(FORM, **data)
        return await _ask_next(ctx, item)
    if not (any(w in said for w in JOIN_WORDS) or answers.is_yes(said)):
        return _missed(ctx, texts.SHARED_HOW)
    offer = data["shared"]
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, msg.openid)
        where = offer.get("building")
        if where:
            resident.building = where
            resident.grid_key = grid_of(ctx, where) or resident.grid_key
        joined = await shared.join(
            session,
            ctx.catalog,
            order_id=offer["order"],
            resident=resident,
            message_key=ctx.message_key,
            building=where,
            note=data.get("need") or None,
        )
        if joined is not None and data.get("consent"):  # their photos go with it
            for index, attachment in enumerate(data.get("attachments", [])):
                await repo.attach(
                    session,
                    offer["order"],
                    f"{ctx.message_key}#{index}",
                    attachment["kind"],
                    attachment,
                )
    if joined is None:  # done or cancelled meanwhile: their own order, then
        data.pop("shared", None)
        ctx.conversation.set(FORM, **data)
        return texts.SHARED_GONE + "\n" + await _ask_next(ctx, item)
    ctx.conversation.clear()
    return texts.joined_shared(joined.code, joined.households)


async def _offer_slots(ctx: Context, item: Item) -> list[dict[str, Any]]:
    zone = ZoneInfo(ctx.catalog.document.community.timezone)
    async with ctx.sessionmaker.begin() as session:
        row = await repo.item_row(session, ctx.community_id, item.id)
        options = await repo.upcoming_slots(session, row, item.weekly, zone)
    offered: list[dict[str, Any]] = []
    for option in options:
        if option.remaining == 0:
            continue  # full slots are not offered; the next ones with places are
        if len(offered) == 5:
            break
        offered.append(
            {
                "id": option.id,
                "starts_at": option.starts_at.isoformat(),
                "label": texts.slot_label(
                    option.starts_at.astimezone(zone), option.location, option.remaining
                ),
            }
        )
    return offered


async def _no_slots(ctx: Context, item: Item) -> str:
    async with ctx.sessionmaker.begin() as session:
        await record_unmet_need(
            session,
            community_id=ctx.community_id,
            result=MatchResult(
                text=f"{item.title}（暂无场次）：{ctx.conversation.data.get('need', '')}",
                decision="matched",
                item=item.id,
                score=1.0,
                candidates=(),
            ),
            catalog_version=ctx.catalog.version,
            openid=ctx.openid,
            message_key=ctx.message_key,
        )
    ctx.conversation.clear()
    return texts.no_slots(item.title)


def _understand(
    question: Question, text: str, data: dict[str, Any], ctx: Context
) -> tuple[Any, str | None]:
    """The answer's value, or a reply asking again with an example."""
    again = f"{texts.NOT_UNDERSTOOD}{EXAMPLES.get(question.kind, '')}。\n{ask(question)}"
    if not question.required and answers.is_skip(text):
        return None, None
    kind = question.kind
    if kind == SLOT_QUESTION:
        offered = data.get("offered", [])
        zone = ZoneInfo(ctx.catalog.document.community.timezone)
        slots = [
            answers.Slot(
                key=str(s["id"]),
                starts_at=dt.datetime.fromisoformat(s["starts_at"]),
                ends_at=None,
                label=s["label"],
            )
            for s in offered
        ]
        found = answers.parse_slot(text, slots, utcnow(), zone)
        if found == "ambiguous":
            listing = _numbered([s["label"] for s in offered])
            return None, f"那天有好几场，请回复序号选一场：\n{listing}"
        if found is None:
            listing = _numbered([s["label"] for s in offered])
            return None, f"{texts.NOT_UNDERSTOOD}{EXAMPLES[SLOT_QUESTION]}。\n{listing}"
        chosen = next(s for s in offered if str(s["id"]) == found.key)
        return {"id": chosen["id"], "label": chosen["label"]}, None
    if kind == "people":
        people = answers.parse_people(text, question.max_people)
        if people is None:
            limit = f"人数是1到{question.max_people}位，"
            return None, f"{texts.NOT_UNDERSTOOD}{limit}{EXAMPLES['people']}。"
        return people, None
    if kind == "phone":
        phone = answers.parse_phone(text)
        if phone is None:
            return None, answers.phone_problem(text)
        return phone, None
    if kind == "choice":
        picked = answers.parse_choice(text, len(question.choices)) or _by_name(
            text, question.choices
        )
        if picked is None:
            return None, f"{texts.NOT_UNDERSTOOD}请回复序号：\n{_numbered(question.choices)}"
        return question.choices[picked - 1], None
    value = text.strip()
    if kind == "building" and not answers.looks_like_address(value, _places(ctx)):
        return None, again
    if kind == "name" and answers.looks_like_question(value):
        return None, again
    longest = LONGEST.get(kind, 200)
    if len(value) > longest:
        return None, f"字数有点多，请简短一些（{longest}字以内）。"
    return value, None


def _places(ctx: Context) -> list[str]:
    """The community's own place names (grids and their areas): an answer naming one is
    an address however it is worded."""
    grids = ctx.catalog.document.community.grids
    return [g.name for g in grids] + [area for g in grids for area in g.areas]


LONGEST = {"name": 50, "building": 200}
"""Longest free answers, within what the residents table keeps (name 100, building 200)."""


def _summary(ctx: Context, item: Item, data: dict[str, Any]) -> str:
    unit = ctx.catalog.unit(item.unit)
    lines = ["请核对一下：", f"服务：{item.title}（{unit.name}）"]
    for question in questions_for(item):
        value = data["answers"].get(question.id)
        if value is None:
            continue
        shown = value["label"] if isinstance(value, dict) else value
        if question.kind == "people":
            shown = f"{value}人"
        if question.kind == "phone":
            shown = answers.mask_phone(str(value))
        label = texts.LABELS.get(question.kind) or (question.ask or question.id).rstrip("？?：: ")
        lines.append(f"{label}：{shown}")
    if data.get("need"):
        lines.append(f"您说的情况：{data['need'][:60]}")
    if data.get(ASK_NAME):
        given = data["answers"].get(NAME)
        lines.append(f"称呼：{given}" if given else ASK_NAME_LINE)
    if _photos_wait(data):
        lines.append(privacy_texts.PHOTOS_WAIT)
    lines.append(texts.CONFIRM_HOW)
    return "\n".join(lines)


async def _place(
    session: AsyncSession, msg: Incoming, ctx: Context, item: Item, data: dict[str, Any]
) -> Any:
    resident = await residents.resident_for(session, ctx.community_id, msg.openid)
    values = data["answers"]
    people = 1
    slot_id = None
    grid = None
    if data.get(ASK_NAME) and resident.name is None:
        # Asked once: a resident who would rather not say is not asked again.
        resident.name = values.get(NAME) or ""
    for question in questions_for(item):
        value = values.get(question.id)
        if value is None:
            continue
        if question.kind == "phone":
            resident.phone = value  # remembered for next time
        elif question.kind == "name":
            resident.name = resident.name or value
        elif question.kind == "building":
            resident.building = value
            grid = grid_of(ctx, value)
            if grid is not None:
                resident.grid_key = grid  # targets grid-wide broadcasts later
        elif question.kind == "people":
            people = int(value)
        elif question.kind == SLOT_QUESTION:
            slot_id = int(value["id"])
    if grid is None:
        grid = resident.grid_key  # the grid of the building the resident gave before
    row = await repo.item_row(session, ctx.community_id, item.id)
    stored = {**values, "people": people}
    held = data.get("held")
    # The unit's notification and the reminders are saved with the order itself.
    order = await domain.place_order(
        session,
        catalog=ctx.catalog,
        policy=ctx.policy,
        now=ctx.clock.now(),
        item=row,
        resident=resident,
        answers=stored,
        description=data.get("need", ""),
        slot_id=slot_id,
        people=people,
        grid_key=grid,
        message_key=ctx.message_key,
        offer=held["entry"] if held is not None and held[HELD_SLOT] == slot_id else None,
    )
    kept = data.get("attachments", []) if data.get("consent") else []
    for index, attachment in enumerate(kept):
        await repo.attach(
            session, order.id, f"{ctx.message_key}#{index}", attachment["kind"], attachment
        )
    return order


ASK_NAME = "ask_name"
"""Key in the form's data: the summary asks the resident's name (once per resident)."""
NAME = "name"
"""Key of the name given at the summary, in the order's answers (shown as 称呼)."""
ASK_NAME_LINE = "方便的话回复您的称呼（比如“王阿姨”），工作人员联系您时好称呼，只问这一次。"


def _ask_name(item: Item, resident: Any) -> bool:
    """Whether the summary asks 怎么称呼您: the resident never gave a name (nor went on
    without one: asked once), the item's form does not ask one, and it is no
    confidential report (whose sender is not asked who they are). It rides on the
    summary, so the form stays as short as it was: 确认 goes on without a name."""
    if item.confidential or (resident is not None and resident.name is not None):
        return False
    return all(q.kind != "name" and q.id != NAME for q in questions_for(item))


NAME_LIKE = re.compile(r"[\u4e00-\u9fff·]{1,8}")


def _looks_like_name(text: str) -> bool:
    """A short run of Chinese characters that is not a yes, a no or a question."""
    said = text.strip()
    return (
        bool(NAME_LIKE.fullmatch(said))
        and not answers.is_yes(said)
        and not answers.is_no(said)
        and not answers.is_skip(said)
        and not answers.looks_like_question(said)
    )


def _is_a_name(reading: Reading) -> bool:
    """Not something else in a few characters: thanks, a word on an order, a question
    the FAQ answers, a request for a service."""
    return (
        reading.act not in _NOT_ANSWERS
        and reading.act is not Act.QUESTION
        and reading.faq is None
        and not reading.detail.off_scope
        and not reading.wants_service
        and not reading.detail.question
    )


def grid_of(ctx: Context, building: str) -> str | None:
    """The grid (网格) whose areas name the building (see ``catalog.addresses.grid_of``)."""
    return addresses.grid_of(ctx.catalog.document.community.grids, building)


async def _slot_full(ctx: Context, item: Item, remaining: int) -> str:
    data = ctx.conversation.data
    questions = questions_for(item)
    data["q"] = next(i for i, q in enumerate(questions) if q.kind == SLOT_QUESTION)
    data["full"] = data["answers"].pop(questions[data["q"]].id, None)
    data.pop("held", None)  # no longer held for them (or too few for the party)
    ctx.conversation.set(FORM, **data)
    prefix = texts.slot_full(remaining)
    offered = await _offer_slots(ctx, item)
    if not offered:
        return prefix + "\n" + texts.WAITLIST_ONLY
    data["offered"] = offered
    ctx.conversation.set(FORM, **data)
    return f"{prefix}\n{_numbered([s['label'] for s in offered])}\n{texts.OR_WAITLIST}"


async def _join_waitlist(msg: Incoming, ctx: Context, item: Item, data: dict[str, Any]) -> str:
    full = data["full"]
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, msg.openid)
        await waitlist.join(session, int(full["id"]), resident.id, people=1)
    ctx.conversation.clear()
    return texts.waitlisted(item.title, full["label"])


def _numbered(options: list[str]) -> str:
    return "\n".join(f"{n}. {option}" for n, option in enumerate(options, start=1))


def _wants_waitlist(text: str) -> bool:
    return any(word in text for word in ("候补", "排队", "等位", "等名额"))
