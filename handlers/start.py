"""Following, unfollowing, and help: the first things a resident meets."""

from __future__ import annotations

from bot.campaigns import scans
from bot.campaigns.qrcodes import campaign_of
from bot.dispatch import Click, Command, Context, Event, Router
from bot.wechat import HELP
from bot.wechat.inbound import Incoming
from catalog import topics as campaign
from handlers import texts
from storage.repositories import residents, subscriptions, units
from storage.types import utcnow

router = Router("start")


@router.on(Event("subscribe", "subscribe_scan"))
async def followed(msg: Incoming, ctx: Context) -> str:
    """A new follower (possibly from a QR code with a scene): welcome them; from a
    campaign poster's code, with that campaign too."""
    async with ctx.sessionmaker.begin() as session:
        await residents.set_following(session, ctx.community_id, msg.openid, True, now=utcnow())
        # New followers get every campaign topic that is on by default.
        resident = await residents.resident_for(session, ctx.community_id, msg.openid)
        defaults = [t.id for t in campaign.topics(ctx.catalog) if t.default_on]
        await subscriptions.subscribe(session, resident.id, defaults)
        poster = await scans.poster_scanned(
            session, ctx.catalog, msg.openid, msg.event_key, ctx.message_key, utcnow()
        )
    welcome = texts.welcome(ctx.catalog.community_name)
    if poster is None:
        return welcome
    return f"{welcome}\n\n{texts.poster_scanned(poster.topic, poster.title, poster.text)}"


@router.on(Event("scan"))
async def scanned(msg: Incoming, ctx: Context) -> str | None:
    """A follower scanned one of the account's codes: a campaign poster's is answered
    with the campaign; any other needs no answer."""
    if campaign_of(msg.event_key) is None:
        return None
    async with ctx.sessionmaker.begin() as session:
        poster = await scans.poster_scanned(
            session, ctx.catalog, msg.openid, msg.event_key, ctx.message_key, utcnow()
        )
    if poster is None:
        return None
    return texts.poster_scanned(poster.topic, poster.title, poster.text)


@router.on(Event("unsubscribe"))
async def unfollowed(msg: Incoming, ctx: Context) -> None:
    """They left: nothing may be sent to them any more (broadcasts check this flag)."""
    async with ctx.sessionmaker.begin() as session:
        await residents.set_following(session, ctx.community_id, msg.openid, False, now=utcnow())
    ctx.conversation.clear()


@router.on(Command("帮助", "help", "?", "？", "你能做什么", "怎么用") | Click(HELP))
async def help_(ctx: Context) -> str:
    """Residents get the residents' help; a bound member of a partner unit gets the
    unit's commands (待办, 接单 …), which are what they came for."""
    async with ctx.sessionmaker() as session:
        mine = await units.memberships(session, ctx.community_id, ctx.openid)
    known = {unit.id: unit.name for unit in ctx.catalog.units}
    names = [known[m.unit_key] for m in mine if m.unit_key in known]
    if names:
        return texts.unit_help(names)
    return texts.help_text(ctx.catalog.community_name)
