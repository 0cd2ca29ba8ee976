"""Routing inbound messages to handlers (see ``router``) by filters (see ``filters``)."""

from bot.dispatch.conversation import ConversationHandler
from bot.dispatch.filters import (
    ActIs,
    Click,
    Command,
    Event,
    Filter,
    Kind,
    Matched,
    Predicate,
    StateIs,
)
from bot.dispatch.router import Context, Dispatcher, Redispatch, Router

__all__ = [
    "ActIs",
    "Click",
    "Command",
    "Context",
    "ConversationHandler",
    "Dispatcher",
    "Event",
    "Filter",
    "Kind",
    "Matched",
    "Predicate",
    "Redispatch",
    "Router",
    "StateIs",
]
