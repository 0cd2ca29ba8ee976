"""A resident's rights over their personal information, in chat: 我的信息 (what is
kept), 撤回同意 (withdraw consent), and 同意 said outside a form (after a photo was not
kept for want of it). The notice itself comes with the first question for a phone or
an address, in ``handlers.ordering``."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.dispatch import Command, Context, Predicate, Router, StateIs
from bot.privacy import consent
from catalog import topics as campaign
from handlers import privacy_texts as texts
from storage.repositories import residents

router = Router("privacy")


@router.on(Command("我的信息", "我的资料", "我的个人信息", "查看我的信息"))
async def mine(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        info = await consent.kept(session, resident)
    names = [t.name for t in campaign.topics(ctx.catalog) if t.id in info.topics]
    return texts.kept(info, names, ZoneInfo(ctx.catalog.document.community.timezone))


@router.on(Command("撤回同意", "取消同意", "撤销同意"))
async def withdraw(ctx: Context) -> str:
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        info = await consent.kept(session, resident)
        if resident is None or not (info.current or info.phone or info.addresses):
            return texts.NOTHING_TO_WITHDRAW
        await consent.withdraw(session, resident, message_key=ctx.message_key, now=ctx.clock.now())
    data = ctx.conversation.data
    if "consent" in data:  # mid-form: what is left of it asks again
        data["consent"] = False
        data.pop("remembered", None)
        ctx.conversation.set(ctx.conversation.state, **data)
    return texts.WITHDRAWN


@router.on(StateIs(None), Predicate(lambda msg, ctx: consent.agrees(msg.text)))
async def agreed(ctx: Context) -> str:
    async with ctx.sessionmaker.begin() as session:
        await consent.answer(
            session,
            community_id=ctx.community_id,
            openid=ctx.openid,
            message_key=ctx.message_key,
            action=consent.GIVEN,
            method=consent.SAID,
            now=ctx.clock.now(),
        )
    return texts.AGREED_OUTSIDE_FORM
