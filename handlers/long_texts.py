"""Messages longer than the bot reads: kept whole for staff, answered politely.

A resident who writes (or pastes) more than the matcher reads (1,000 characters,
``catalog.matcher.WINDOW``) is telling a story, not naming a service: a guess from
its first lines would more likely be wrong than right. The whole text goes to the
list of needs (需求清单) that staff read, and the resident is asked for the need in a
sentence. This router comes first, so that no other filter or handler ever works
through such a text: the work a message costs stays bounded whatever its length
(the body limit allows ~21,000 Han characters).
"""

from __future__ import annotations

from bot.dispatch import Context, Predicate, Router
from bot.wechat.inbound import Incoming
from catalog.matcher import WINDOW, MatchResult
from handlers import texts
from storage.repositories.needs import record_unmet_need

router = Router("long_texts")

LONGEST = WINDOW
"""Characters of a message the bot converses about; longer ones are kept for staff."""


@router.on(Predicate(lambda msg, ctx: len(msg.text) > LONGEST))
async def too_long(msg: Incoming, ctx: Context) -> str:
    """Keep the whole text (the conversation, if any, goes on where it was)."""
    async with ctx.sessionmaker.begin() as session:
        await record_unmet_need(
            session,
            community_id=ctx.community_id,
            result=MatchResult(text=msg.text, decision="none", item=None, score=0.0, candidates=()),
            catalog_version=ctx.catalog.version,
            openid=msg.openid,
            message_key=ctx.message_key,
        )
    return texts.LONG_TEXT_KEPT
