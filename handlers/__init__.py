"""Conversation and commands: one router per module, included in a fixed order.

The order is the order of precedence: a command such as 帮助 must win over reading
the same text as a need, and media handlers must see a voice message WeChat could
not recognise before the text handlers ignore it.
"""

from __future__ import annotations

from bot.dispatch import Router


def routers() -> list[Router]:
    from handlers import ask, media, start

    return [start.router, media.router, ask.router]
