"""A resident's rights over their personal information, in chat: 我的信息 (what is
kept), 撤回同意 (withdraw consent), and 同意 said where no notice was shown. The notice
itself comes with the first question for a phone or an address, the first photo, or
the summary of a form with photos waiting, in ``handlers.ordering``."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch import Command, Context, Predicate, Router, StateIs
from bot.privacy import consent
from bot.privacy.kept import Kept, kept_about
from bot.privacy.retention import Periods
from catalog import topics as campaign
from handlers import ordering
from handlers import privacy_texts as texts
from storage.models import Resident
from storage.repositories import residents

router = Router("privacy")


@router.on(Command("我的信息", "我的资料", "我的个人信息", "查看我的信息"))
async def mine(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        info = await _kept(ctx, session, resident)
    names = [t.name for t in campaign.topics(ctx.catalog) if t.id in info.topics]
    return texts.kept(info, names, ZoneInfo(ctx.catalog.document.community.timezone))


async def _kept(ctx: Context, session: AsyncSession, resident: Resident | None) -> Kept:
    """What is kept about the resident (nothing yet: never wrote before)."""
    periods = Periods(contact=ctx.policy.contact_kept_days, photos=ctx.policy.photo_kept_days)
    info = None
    if resident is not None:
        info = await kept_about(session, ctx.community_id, resident.id, periods=periods)
    return info or Kept(name=None, phone=None, building=None)


@router.on(Command("撤回同意", "取消同意", "撤销同意"))
async def withdraw(ctx: Context) -> str:
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        info = await _kept(ctx, session, resident)
        if resident is None or not (info.current or info.phone or info.addresses):
            return texts.NOTHING_TO_WITHDRAW
        await consent.withdraw(session, resident, message_key=ctx.message_key, now=ctx.clock.now())
    again = await ordering.after_withdrawal(ctx)
    return texts.WITHDRAWN if again is None else f"{texts.WITHDRAWN_MID_FORM}\n{again}"


@router.on(StateIs(None), Predicate(lambda msg, ctx: consent.agrees(msg.text)))
async def agreed(ctx: Context) -> str:
    """同意 with no notice shown: nothing is recorded (consent is to a notice read),
    they are told it will be asked with the notice when something is to be kept."""
    return texts.NOT_ASKED_YET
