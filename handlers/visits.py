"""Door-to-door visits (下户走访) by chat, for grid workers (网格员) bound with a code.

``走访 3栋2单元501 已宣传`` records a visit (没人在家 / 家里没人: nobody home; 需跟进
<what>: reached, and a follow-up is made); without an outcome the bot asks for one.
``走访`` alone lists the grid's households not yet reached in the current campaign,
elderly living alone first, ten at a time (``更多``); a number picks one and the
outcome is asked as a numbered choice (1 已宣传 2 没人在家 3 需跟进). ``走访待办``
lists open follow-ups; ``跟进完成 <n>`` closes the n-th of the list last shown (its
ids are kept in the conversation state, so a follow-up closed meanwhile by someone
else does not shift the numbers).

A visit belongs to the campaign in effect for the household's grid
(``storage.repositories.visits.campaign_for_grid``) and is keyed by the message, so a
retried message records it once. Commands work in any state; the list and the
outcome question are a conversation that hands anything else back (``Redispatch``).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import Command, Context, ConversationHandler, Predicate, Redispatch, Router
from bot.wechat.inbound import Incoming
from catalog import answers
from catalog.addresses import parse_address
from catalog.topics import topics
from handlers import visit_texts as texts
from storage import models
from storage.repositories import households as homes
from storage.repositories import visits as repo

PICK = "visits.pick"
OUTCOME = "visits.outcome"
TASKS = "visits.tasks"
"""走访待办 was shown: ``tasks`` holds its follow-ups' ids, in the order numbered."""
PAGE = 10
TASKS_SHOWN = 20
"""Follow-ups 走访待办 lists, those waiting longest first (a chat reply stays short)."""

conversation = ConversationHandler("visits", [PICK, OUTCOME, TASKS])
router = Router("visits")

# Outcome words, tried in this order (没人在家 holds 在家; 需跟进 comes with a note).
_OUTCOME_WORDS = (
    (repo.FOLLOW_UP, r"需要跟进|需跟进|要跟进|待跟进|跟进|需要回访|需回访|要回访"),
    (
        repo.NOBODY_HOME,
        r"没人在家|家里没人|家中无人|无人在家|没有人在家|不在家|没在家|没人|无人|没开门|不开门|敲门没人",
    ),
    (
        repo.REACHED,
        r"已宣传|宣传了|宣传过了|宣传过|已走访|已告知|告知了|讲过了|已讲解|已入户|已见面",
    ),
)
_OUTCOME = re.compile("|".join(f"(?P<{name}>{words})" for name, words in _OUTCOME_WORDS))
_NUMBERED = {1: repo.REACHED, 2: repo.NOBODY_HOME, 3: repo.FOLLOW_UP}
_NOTE_EDGE = " ，,。.:：;；、!！"

_VISIT = re.compile(r"^\s*走访(?P<sep>\s*)(?P<rest>.*?)\s*$", re.S)
_ADDRESS_START = re.compile(r"[0-9０-９一二两三四五六七八九十A-Za-z]")


def _visit_args(text: str) -> str | None:
    """What follows 走访 in a visit command ("" for 走访 alone); None when the message
    is not one (走访慰问老人 is a resident's words, not a command)."""
    found = _VISIT.match(text)
    if found is None:
        return None
    rest = found["rest"]
    if not rest or found["sep"] or _ADDRESS_START.match(rest):
        return rest
    return None


def read_outcome(text: str) -> tuple[str | None, str, str]:
    """(outcome, what comes before its word, the note after it) of a visit's words."""
    found = _OUTCOME.search(text)
    if found is None:
        return None, text.strip(), ""
    outcome = found.lastgroup
    note = text[found.end() :].strip(_NOTE_EDGE)
    return outcome, text[: found.start()].strip(_NOTE_EDGE), note


def _numbered_outcome(text: str) -> tuple[str | None, str]:
    """An answer to the outcome question: 1, 2 or 3 (3 may bring its note), or the
    outcome's words."""
    said = text.strip()
    found = re.match(r"^([1-3１-３一二三])(?:[.、．\s]|$)\s*(.*)$", said, re.S)
    if found is not None:
        number = answers.parse_choice(found[1], 3)
        if number is not None:
            return _NUMBERED[number], found[2].strip(_NOTE_EDGE)
    outcome, before, note = read_outcome(said)
    if outcome is not None and not before:
        return outcome, note
    return None, ""


def _topic_name(ctx: Context, campaign: models.Broadcast | None) -> str | None:
    if campaign is None:
        return None
    names = {t.id: t.name for t in topics(ctx.catalog)}
    return names.get(campaign.topic, campaign.title)


def _grid_name(ctx: Context, grid_key: str) -> str:
    names = {g.id: g.name for g in ctx.catalog.document.community.grids}
    return names.get(grid_key, "其他网格")


async def _record(
    ctx: Context,
    session: AsyncSession,
    household: models.Household,
    outcome: str,
    note: str,
) -> str:
    campaign = await repo.campaign_for_grid(
        session, ctx.community_id, household.grid_key, ctx.clock.now()
    )
    done = await repo.record_visit(
        session,
        household=household,
        openid=ctx.openid,
        outcome=outcome,
        note=note[:500],
        broadcast_id=campaign.id if campaign else None,
        message_key=ctx.message_key,
    )
    # A retried message is answered with what its first delivery recorded.
    visit = done.visit
    topic = _topic_name(ctx, campaign)
    return texts.recorded(homes.label(household), visit.outcome, topic, visit.note)


@router.on(Command("走访待办", "跟进待办"))
async def follow_ups(msg: Incoming, ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        grids = await repo.worker_grids(session, ctx.community_id, msg.openid)
        if not grids:
            return texts.NOT_A_WORKER
        open_tasks = await repo.tasks(
            session, ctx.community_id, grids, open_only=True, limit=TASKS_SHOWN
        )
        total = await repo.count_open(session, ctx.community_id, grids) if open_tasks else 0
    if not open_tasks:
        if ctx.conversation.state == TASKS:
            ctx.conversation.clear()
        return texts.NO_TASKS
    # 跟进完成 <n> closes the n-th follow-up of this list, as shown, whatever was
    # closed or added since.
    ctx.conversation.set(TASKS, tasks=[t.id for t in open_tasks])
    zone = ZoneInfo(ctx.catalog.document.community.timezone)
    return texts.tasks(
        [
            (t.household, t.note, f"{t.created_at.astimezone(zone):%m月%d日}".lstrip("0"))
            for t in open_tasks
        ],
        total,
    )


@router.on(Command("跟进完成", "跟进办完", "跟进已完成"))
async def follow_up_done(msg: Incoming, ctx: Context, args: str) -> str:
    shown: list[int] = (
        list(ctx.conversation.data.get("tasks", [])) if ctx.conversation.state == TASKS else []
    )
    number = answers.parse_choice(args, 1000) if args else None
    async with ctx.sessionmaker.begin() as session:
        grids = await repo.worker_grids(session, ctx.community_id, msg.openid)
        if not grids:
            return texts.NOT_A_WORKER
        if number is None:
            return texts.TASK_HOW
        if not shown:
            return texts.TASKS_FIRST
        if not 1 <= number <= len(shown):
            return texts.no_such_task(args)
        task = await repo.find_task(session, ctx.community_id, shown[number - 1])
        closed = task is not None and await repo.close_task(
            session,
            ctx.community_id,
            task.id,
            done_by=f"grid:{msg.openid}",
            now=ctx.clock.now(),
            grid_keys=grids,
        )
        left = await repo.count_open(session, ctx.community_id, grids)
    if task is None or (not closed and task.status == "open"):
        return texts.no_such_task(args)  # gone, or of a grid no longer theirs
    if not closed and task.done_by != f"grid:{msg.openid}":
        return texts.task_was_done(task.household, left)
    # Closed now, or by this worker already (a retried message): done, as they said.
    return texts.task_done(task.household, left)


@router.on(Predicate(lambda msg, ctx: _visit_args(msg.text) is not None))
async def visit(msg: Incoming, ctx: Context) -> str:
    return await _visit(msg, ctx, _visit_args(msg.text) or "")


def _bare_address(text: str) -> bool:
    """An address (and maybe an outcome) without 走访, sent while choosing from the list."""
    where = read_outcome(text)[1]
    return bool(where) and parse_address(where) is not None


@conversation.interrupts.on(Predicate(lambda msg, ctx: _bare_address(msg.text)))
async def visit_named(msg: Incoming, ctx: Context) -> str:
    return await _visit(msg, ctx, msg.text.strip())


async def _visit(msg: Incoming, ctx: Context, said: str) -> str:
    async with ctx.sessionmaker.begin() as session:
        grids = await repo.worker_grids(session, ctx.community_id, msg.openid)
        if not grids:
            return texts.NOT_A_WORKER
        if not said:
            return await _show_list(ctx, session, grids, fresh=True)
        outcome, where, note = read_outcome(said)
        address = parse_address(where) if where else None
        if address is None:
            return texts.unreadable(where) if where else texts.HOW
        household = await homes.household_for_address(session, ctx.community_id, where)
        if household is None:
            return texts.not_listed(address.label)
        if household.grid_key not in grids:
            return texts.other_grid(homes.label(household), _grid_name(ctx, household.grid_key))
        if outcome is None:
            ctx.conversation.set(OUTCOME, household=household.id)
            return texts.ask_outcome(homes.label(household))
        ctx.conversation.clear()
        return await _record(ctx, session, household, outcome, note)


async def _show_list(ctx: Context, session: AsyncSession, grids: list[str], *, fresh: bool) -> str:
    """The page of the households not yet reached: a fresh list (走访), or the next
    page of the one shown (更多)."""
    now = ctx.clock.now()
    campaign = await repo.campaign_for_grid(session, ctx.community_id, grids[0], now)
    data = ctx.conversation.data if not fresh else {}
    if fresh:
        waiting = []
        for grid in grids:
            found = await repo.campaign_for_grid(session, ctx.community_id, grid, now)
            waiting += await repo.not_reached(
                session,
                ctx.community_id,
                [grid],
                found.id if found else None,
                since=now - repo.CAMPAIGN_WINDOW,
            )
        waiting.sort(key=lambda h: not h.elderly_alone)  # stable: door order kept
        if not waiting:
            listed = await homes.households(session, ctx.community_id, grids)
            ctx.conversation.clear()
            return texts.all_reached(_topic_name(ctx, campaign)) if listed else texts.NO_HOUSEHOLDS
        data = {"ids": [h.id for h in waiting], "page": 0}
    else:
        data = {**data, "page": int(data.get("page", 0)) + 1}
    ids: list[int] = list(data["ids"])
    start = data["page"] * PAGE
    if start >= len(ids):
        return texts.LAST_PAGE
    shown = ids[start : start + PAGE]
    rows = await homes.by_ids(session, ctx.community_id, shown)
    labels = [_shown(rows[i]) for i in shown if i in rows]
    ctx.conversation.set(PICK, **data)
    more = start + PAGE < len(ids)
    return texts.households_page(_topic_name(ctx, campaign), len(ids), start + 1, labels, more)


def _shown(household: models.Household) -> str:
    label = homes.label(household)
    return f"{label}（独居老人）" if household.elderly_alone else label


# --- the list and the outcome question ----------------------------------------------------


@conversation.interrupts.on(Command("取消", "算了", "不记了", "退出"))
async def leave(ctx: Context) -> str:
    ctx.conversation.clear()
    return texts.CANCELLED


@conversation.state(PICK).on(Command("更多", "下一页", "还有吗"))
async def more(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        grids = await repo.worker_grids(session, ctx.community_id, ctx.openid)
        if not grids:
            ctx.conversation.clear()
            return texts.NOT_A_WORKER
        return await _show_list(ctx, session, grids, fresh=False)


_PICKED = re.compile(
    r"^\s*(?:第)?(?P<n>\d{1,4}|[一二两三四五六七八九十]{1,3})(?:个|号|户)?(?P<rest>.*)$", re.S
)


def _picked(text: str) -> bool:
    """A number from the list, alone or with the outcome (3 已宣传, 3 2)."""
    found = _PICKED.match(text)
    if found is None:
        return False
    rest = found["rest"]
    return not rest.strip() or rest[0] in _NOTE_EDGE or _OUTCOME.match(rest) is not None


@conversation.state(PICK).on(Predicate(lambda msg, ctx: _picked(msg.text)))
async def pick(msg: Incoming, ctx: Context) -> str:
    found = _PICKED.match(msg.text)
    assert found is not None
    ids: list[int] = list(ctx.conversation.data.get("ids", []))
    number = answers.parse_choice(found["n"], len(ids))
    if number is None:
        return texts.bad_pick(len(ids))
    household_id = ids[number - 1]
    rest = found["rest"].strip(_NOTE_EDGE)
    outcome, note = _numbered_outcome(rest) if rest else (None, "")
    async with ctx.sessionmaker.begin() as session:
        grids = await repo.worker_grids(session, ctx.community_id, msg.openid)
        household = (await homes.by_ids(session, ctx.community_id, [household_id])).get(
            household_id
        )
        if not grids:
            ctx.conversation.clear()
            return texts.NOT_A_WORKER
        if household is None or household.grid_key not in grids:
            return texts.bad_pick(len(ids))
        if outcome is None:
            ctx.conversation.set(OUTCOME, household=household_id, pick=ctx.conversation.data)
            return texts.ask_outcome(homes.label(household))
        return await _record_and_go_on(ctx, session, household, outcome, note)


@conversation.state(OUTCOME).on(
    Predicate(lambda msg, ctx: _numbered_outcome(msg.text)[0] is not None)
)
async def answer_outcome(msg: Incoming, ctx: Context) -> str:
    outcome, note = _numbered_outcome(msg.text)
    assert outcome is not None
    household_id = int(ctx.conversation.data["household"])
    async with ctx.sessionmaker.begin() as session:
        grids = await repo.worker_grids(session, ctx.community_id, msg.openid)
        household = (await homes.by_ids(session, ctx.community_id, [household_id])).get(
            household_id
        )
        if household is None or household.grid_key not in grids:
            ctx.conversation.clear()
            return texts.NOT_A_WORKER if not grids else texts.HOW
        return await _record_and_go_on(ctx, session, household, outcome, note)


async def _record_and_go_on(
    ctx: Context, session: AsyncSession, household: models.Household, outcome: str, note: str
) -> str:
    """Record, then back to the list the household was picked from (if any)."""
    data = ctx.conversation.data
    listing = data if ctx.conversation.state == PICK else data.get("pick")
    reply = await _record(ctx, session, household, outcome, note)
    if listing:
        ctx.conversation.set(PICK, **listing)
        return f"{reply}\n{texts.next_pick()}"
    ctx.conversation.clear()
    return reply


@conversation.state(OUTCOME).on(Predicate(lambda msg, ctx: msg.text.strip().isdigit()))
async def outcome_again() -> str:
    return texts.ASK_OUTCOME_AGAIN


@conversation.fallbacks.on()
async def something_else(ctx: Context) -> str | None:
    ctx.conversation.clear()
    raise Redispatch()


router.include(conversation)
