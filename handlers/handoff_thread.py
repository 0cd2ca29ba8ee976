"""While a resident's 转人工 is open, what they write goes into its thread for staff.

Staff see the thread on the console and close it when they are done; until then a
resident's later messages (another 转人工 included) land in it. When the resident
asked for a person, that is all: the bot only says it is passed on. When the bot
made the handoff itself (a question it could not answer, a complaint, an emergency),
the message is recorded for staff and the bot answers it as usual, so a form or a
rating the resident is in the middle of goes on.

Whether a handoff is open is a question to the database, which filters do not ask:
this router takes every text, looks, and otherwise passes the message on to the
routers after it, as if it had never stopped here.
"""

from __future__ import annotations

from bot.dispatch import Context, Kind, Router
from bot.wechat.inbound import Incoming
from handlers import pass_to, texts
from storage.repositories import handoffs


def router(after: list[Router]) -> Router:
    """Messages for an open handoff's thread, handing everything else to ``after``."""
    rest = Router("handoff_thread.rest")
    rest.include(*after)
    own = Router("handoff_thread")

    @own.on(Kind("text"))
    async def into_thread(msg: Incoming, ctx: Context) -> str | None:
        async with ctx.sessionmaker.begin() as session:
            current = await handoffs.open_handoff(session, ctx.community_id, ctx.openid)
            if current is not None:
                await handoffs.add_resident_message(
                    session, current, ctx.message_key, msg.text, ctx.clock.now()
                )
        if current is not None and current.asked:
            ctx.conversation.clear()
            return texts.IN_THREAD
        return await pass_to(rest, msg, ctx)

    return own
