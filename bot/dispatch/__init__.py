"""Routing inbound messages to handlers (see ``router``) by filters (see ``filters``)."""

from bot.dispatch.conversation import Conversation
from bot.dispatch.filters import (
    Click,
    Command,
    Event,
    Filter,
    Kind,
    Matched,
    Predicate,
    StateIs,
)
from bot.dispatch.router import Context, Dispatcher, Router

__all__ = [
    "Click",
    "Command",
    "Context",
    "Conversation",
    "Dispatcher",
    "Event",
    "Filter",
    "Kind",
    "Matched",
    "Predicate",
    "Router",
    "StateIs",
]
