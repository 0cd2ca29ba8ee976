"""删除我的信息: a resident erases what is kept about them, after confirming.

The command works in any state (a resident mid-form may ask too); the confirmation
is a state of its own. What is erased and what an open order keeps is
``bot.privacy.erasure``'s; a retried confirmation finds its request (keyed by the
message) and gives the same answer.
"""

from __future__ import annotations

from bot.dispatch import Command, Context, Predicate, Redispatch, Router, StateIs
from bot.dispatch.conversation import ConversationHandler
from bot.dispatch.filters import clean_command
from bot.privacy import erasure
from handlers import erasure_texts as texts
from storage.repositories import residents

CONFIRM = "privacy.erase"

conversation = ConversationHandler("erasure.confirm", [CONFIRM])
router = Router("erasure")
router.include(conversation)


def _said(words: frozenset[str]) -> Predicate:
    return Predicate(lambda msg, ctx: clean_command(msg.text or "") in words)


@router.on(Command("删除我的信息", "删除我的资料", "删除个人信息", "删除我的个人信息"))
async def ask(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        kept = await erasure.open_orders(session, resident.id) if resident else []
    if ctx.conversation.state != CONFIRM:  # asked twice: what was before the first
        before = {"state": ctx.conversation.state, "data": ctx.conversation.data}
        ctx.conversation.set(CONFIRM, before=before)
    return texts.ask(kept)


def _resume(ctx: Context) -> None:
    """Back to what the resident was doing when they asked (a form half filled in
    goes on where it was)."""
    before = ctx.conversation.data.get("before") or {}
    ctx.conversation.set(before.get("state"), **before.get("data", {}))


@conversation.state(CONFIRM).on(_said(texts.CONFIRM_WORDS))
async def confirmed(ctx: Context) -> str:
    ctx.conversation.clear()
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, ctx.openid)
        done = await erasure.erase_resident(
            session,
            resident,
            requested_by="resident",
            now=ctx.clock.now(),
            message_key=ctx.message_key,
            forget_conversation=False,  # cleared above, saved with the reply
        )
    return texts.erased(done.kept)


@conversation.state(CONFIRM).on(_said(texts.KEEP_WORDS))
async def kept(ctx: Context) -> str:
    _resume(ctx)
    return texts.NOTHING_ERASED if ctx.conversation.state is None else texts.GO_ON


@conversation.fallbacks.on(Predicate(lambda msg, ctx: bool(msg.text)))
async def something_else(ctx: Context) -> str:
    """Not an answer: nothing is erased, and the message is handled as what it is
    (an answer to the form they were filling in, say)."""
    _resume(ctx)
    raise Redispatch()


@router.on(Command("确认删除"), ~StateIs(CONFIRM))
async def confirm_unasked(ctx: Context) -> str:
    """确认删除 with no question pending: ask first (nothing irreversible unasked)."""
    return texts.ASK_FIRST
