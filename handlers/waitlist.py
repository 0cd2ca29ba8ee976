"""A place freed for a resident on the waiting list: 要 takes it, 不要了 hands it on.

The offer reached the resident through the outbox (``bot.orders.waitlist``); their
answer comes as a plain word in no conversation. Whether a place is held for them
is a question to the database, which filters do not ask: this router takes the
words an answer may be, looks, and when nothing is held passes the message on to
the routers after it, as if it had never stopped here.

要 (好的, 确认, 可以 …) starts the booking with the held place as its slot: the
remaining questions are asked, and 确认 places the order with that place
(``handlers.ordering``). Naming the service works too (ordering finds the hold).
"""

from __future__ import annotations

import re

from bot.dispatch import Context, Predicate, Router, StateIs
from bot.orders import waitlist as offers
from bot.wechat.inbound import Incoming
from catalog import answers
from handlers import ordering, pass_to, texts
from storage.repositories import waitlist as repo

_TAKE = re.compile(r"^(?:要|我要|要的|要要|还要|我还要|需要|报名|我报名)[的了呀啊吧哈]*$")


def _answer(text: str) -> str | None:
    said = text.strip().rstrip("。.!！~～ ")
    if _TAKE.match(said) or answers.is_yes(said):
        return "take"
    if answers.is_no(said):
        return "decline"
    return None


def router(after: list[Router]) -> Router:
    """The waiting-list answers, handing everything else to ``after`` in order."""
    rest = Router("waitlist.rest")
    rest.include(*after)
    own = Router("waitlist")

    @own.on(StateIs(None), Predicate(lambda msg, ctx: _answer(msg.text) is not None))
    async def answer_offer(msg: Incoming, ctx: Context) -> str | None:
        wanted = _answer(msg.text)
        async with ctx.sessionmaker.begin() as session:
            held = await repo.open_offers(session, ctx.community_id, ctx.openid)
            offer = held[0] if held and ctx.catalog.has_item(held[0].item_key) else None
            if offer is not None and wanted == "decline":
                if await offers.decline(session, ctx.catalog, ctx.policy, offer, ctx.clock.now()):
                    return texts.OFFER_DECLINED
                offer = None  # handed on meanwhile
        if offer is None:
            return await pass_to(rest, msg, ctx)
        return await ordering.start_form(ctx, ctx.catalog.item(offer.item_key))

    return own
