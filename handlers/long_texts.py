"""Messages longer than the bot reads: kept whole for staff, answered politely.

A resident who writes (or pastes) more than the matcher reads (1,000 characters,
``catalog.matcher.WINDOW``) is telling a story, not naming a service: a guess from
its first lines would more likely be wrong than right. The whole text goes to the
list of needs (需求清单) that staff read, and the resident is asked for the need in a
sentence. This router comes first, so that no other filter or handler ever works
through such a text: the work a message costs stays bounded whatever its length
(the body limit allows ~21,000 Han characters).

Two kinds of long text are never put on that list, which every staff member reads:
an answer in the middle of a conversation (it may be the story of a confidential
report, whose words are for the serving unit only; the resident is asked to answer
in a sentence or two, as the form asks of any long answer), and a text whose
beginning reads as a confidential service (廉情监督 …): the resident is asked to say
it briefly, and the conversation then goes to that service like any other message.
"""

from __future__ import annotations

from bot.dispatch import Context, Predicate, Router
from bot.wechat.inbound import Incoming
from catalog.matcher import WINDOW, MatchResult
from catalog.model import Catalog
from handlers import texts
from storage.repositories.needs import record_unmet_need

router = Router("long_texts")

LONGEST = WINDOW
"""Characters of a message the bot converses about; longer ones are kept for staff."""


@router.on(Predicate(lambda msg, ctx: len(msg.text) > LONGEST))
async def too_long(msg: Incoming, ctx: Context) -> str:
    """Keep the whole text for staff, unless it is an answer or reads as confidential
    (the conversation, if any, goes on where it was)."""
    if ctx.conversation.state is not None:
        return texts.LONG_ANSWER
    if _reads_as_confidential(await ctx.read_match(), ctx.catalog):
        return texts.LONG_TEXT_SHORTEN
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


def _reads_as_confidential(match: MatchResult, catalog: Catalog) -> bool:
    """The matcher would take or offer a confidential item for the text's beginning."""
    if match.decision == "none":
        return False
    return any(catalog.item(c.item).confidential for c in match.candidates)
