"""Notices that answer before an order is taken (「5栋今日停水，预计18点恢复」).

While a notice staff published is in force, a resident of its building or grid whose
message is about the same thing (``catalog.notices``) is answered with the notice
first, once, and asked whether they still want to report it: 报修 (or 是, 要) starts
the order from what they first wrote, so nothing is lost. Any other message is read
afresh. Whether a notice applies is a question to the database, which filters do not
ask: as ``handlers.waitlist`` does, this router looks, and when nothing applies passes
the message on to the routers after it as if it had never stopped here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

from bot.dispatch import (
    ActIs,
    Context,
    ConversationHandler,
    Kind,
    Predicate,
    Redispatch,
    Router,
)
from bot.wechat.inbound import Incoming
from catalog import answers
from catalog.acts import Act
from catalog.notices import Place, Said, answering, place_of
from catalog.understanding import Reading, understand
from handlers import ordering, pass_to
from storage.repositories import notices as repo
from storage.repositories import residents

OFFERED = "notice.offered"

_REPORT = re.compile(r"报|还要|要修|要办|需要|^要")

STILL_REPORT = "如果您家的情况和通知说的不一样，还需要报修，请回复“报修”；不需要就不用回复了。"
NOT_REPORTED = "好的。通知有变化会再告诉您，有别的需要随时找我。"


def _wants_report(text: str) -> bool:
    said = text.strip()
    return bool(_REPORT.search(said)) or answers.is_yes(said)


def until_zh(ends: dt.datetime, now: dt.datetime) -> str:
    """今天18:00, 明天8:00, 12月12日18:00 (local times)."""
    days = (ends.date() - now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{ends.month}月{ends.day}日")
    return f"{day}{ends.hour}:{ends.minute:02d}"


def notice_reply(texts: list[tuple[str, dt.datetime]], now: dt.datetime) -> str:
    lines = [f"【社区通知】{text}（通知有效到{until_zh(ends, now)}）" for text, ends in texts]
    return "\n".join([*lines, STILL_REPORT])


def router(after: list[Router]) -> Router:
    """Notices answering first, handing everything else to ``after`` in order."""
    rest = Router("notices.rest")
    rest.include(*after)
    conversation = ConversationHandler("notices", [OFFERED])

    @conversation.entry.on(
        Kind("text", "voice"),
        Predicate(lambda msg, ctx: bool(msg.text)),
        ActIs(Act.REQUEST, Act.QUESTION, Act.COMPLAINT),
    )
    async def answer_first(msg: Incoming, ctx: Context, reading: Reading) -> str | None:
        now = ctx.clock.now()
        zone = ZoneInfo(ctx.catalog.document.community.timezone)
        async with ctx.sessionmaker.begin() as session:
            live = await repo.live(session, ctx.community_id, now)
            resident = (
                await residents.find_resident(session, ctx.community_id, ctx.openid)
                if live
                else None
            )
            if not live or resident is None:
                return await pass_to(rest, msg, ctx)
            building = resident.building
            known = Place(
                grid_key=resident.grid_key
                or (ordering.grid_of(ctx, building) if building else None),
                building=building,
            )
            place = place_of(msg.text, known, lambda text: ordering.grid_of(ctx, text))
            match = reading.match
            items = [match.item] if match.item else [c.item for c in match.candidates[:2]]
            said = Said(msg.text, items=tuple(items))
            applying = [row for row in live if answering([repo.facts(row)], said, place)]
            fresh = await repo.already_told(session, resident.id, [r.id for r in applying])
            applying = [r for r in applying if r.id not in fresh]
            if not applying:
                return await pass_to(rest, msg, ctx)
            await repo.told(session, resident.id, [r.id for r in applying])
        ctx.conversation.set(OFFERED, notices=[r.id for r in applying], text=msg.text)
        local_now = now.astimezone(zone)
        shown = [(r.text, r.ends_at.astimezone(zone)) for r in applying]
        return notice_reply(shown, local_now)

    offered = conversation.state(OFFERED)

    @offered.on(Predicate(lambda msg, ctx: _wants_report(msg.text)))
    async def report_anyway(msg: Incoming, ctx: Context) -> str | None:
        data = ctx.conversation.data
        original: str = data.get("text", "")
        ids: list[int] = list(data.get("notices", []))
        ctx.conversation.clear()
        async with ctx.sessionmaker.begin() as session:
            resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
            if resident is not None:
                await repo.reported_anyway(session, resident.id, ids)
        loop = asyncio.get_running_loop()
        reading = await loop.run_in_executor(ctx.matching, understand, original, ctx.matcher)
        first = dataclasses.replace(msg, text=original)
        return await ordering.handle_request(first, ctx, reading)

    @offered.on(Predicate(lambda msg, ctx: answers.is_no(msg.text.strip())))
    async def not_reported(ctx: Context) -> str:
        ctx.conversation.clear()
        return NOT_REPORTED

    @conversation.fallbacks.on()
    async def something_else(ctx: Context) -> str | None:
        ctx.conversation.clear()
        raise Redispatch()

    return conversation
