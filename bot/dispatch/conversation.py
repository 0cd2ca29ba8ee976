"""Multi-turn conversations, after python-telegram-bot's ``ConversationHandler``.

A :class:`ConversationHandler` router holds

* ``entry``: handlers that start the conversation (tried when the resident is in no
  conversation at all: one conversation's entry points never cut into another's
  questions, which hand over what is not theirs with ``Redispatch``);
* ``states``: one router per state, tried while the resident is in that state;
* ``interrupts``: tried first in every state (``取消``: leave at once, whatever the
  question was, even one that accepts any text);
* ``fallbacks``: tried in every state when the state's handlers did not take the
  message (an answer that makes no sense: ask again).

Handlers move between states with ``ctx.conversation.set(state, **data)`` and end
with ``ctx.conversation.clear()``. The state lives in the database
(``bot.pipeline.state``) and times out after ``CONVERSATION_TIMEOUT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.dispatch.router import Context, Handler, Router
from bot.wechat.inbound import Incoming


class ConversationHandler(Router):
    def __init__(self, name: str, states: Iterable[str]) -> None:
        super().__init__(name)
        self.entry = Router(f"{name}.entry")
        self.interrupts = Router(f"{name}.interrupts")
        self.fallbacks = Router(f"{name}.fallbacks")
        self.states = {state: Router(f"{name}.{state}") for state in states}

    def state(self, name: str) -> Router:
        return self.states[name]

    def resolve(self, msg: Incoming, ctx: Context) -> tuple[Handler, dict[str, Any], str] | None:
        current = ctx.conversation.state
        if current in self.states:
            for router in (self.interrupts, self.states[current], self.fallbacks):
                found = router.resolve(msg, ctx)
                if found is not None:
                    return found
            return None
        if current is None:
            return self.entry.resolve(msg, ctx)
        return None
