"""Composable filters: ``Kind("text") & StateIs(None)``, ``Click(HELP) | Command("帮助")``.

A filter says whether a handler wants a message. It may return a dict instead of
True: its entries become arguments of the handler (``Command`` passes ``args``,
``Matched`` passes ``match``), as aiogram's filters do. Unlike aiogram's, filters
are plain functions: they decide from the message and the context the webhook has
already loaded (state, catalog), so none needs I/O, and a message passes a dozen of
them at the cost of a dozen calls rather than a dozen coroutines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.wechat.inbound import Incoming

if TYPE_CHECKING:
    from bot.dispatch.router import Context

FilterResult = bool | dict[str, Any]


class Filter:
    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        return _All(self, other)

    def __or__(self, other: Filter) -> Filter:
        return _Any(self, other)

    def __invert__(self) -> Filter:
        return _Not(self)


class _All(Filter):
    def __init__(self, *filters: Filter) -> None:
        self.filters = filters

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        found: dict[str, Any] = {}
        for f in self.filters:
            result = f(msg, ctx)
            if not result:
                return False
            if isinstance(result, dict):
                found.update(result)
        return found or True


class _Any(Filter):
    def __init__(self, *filters: Filter) -> None:
        self.filters = filters

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        for f in self.filters:
            result = f(msg, ctx)
            if result:
                return result
        return False


class _Not(Filter):
    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        return not self.inner(msg, ctx)


class Kind(Filter):
    """The message type: text, voice, image, location, link, event …"""

    def __init__(self, *kinds: str) -> None:
        self.kinds = frozenset(kinds)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        return msg.kind in self.kinds


class Event(Filter):
    """An event by name (lower case, as WeChat's ``Event`` after lower-casing)."""

    def __init__(self, *events: str) -> None:
        self.events = frozenset(e.lower() for e in events)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        return msg.kind == "event" and msg.event in self.events


class Click(Filter):
    """A custom-menu CLICK with one of these keys."""

    def __init__(self, *keys: str) -> None:
        self.keys = frozenset(keys)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        return msg.kind == "event" and msg.event == "click" and msg.event_key in self.keys


class Command(Filter):
    """A message (typed or spoken) that starts with one of the words: ``取消订单 A12``.

    Full-width forms and trailing punctuation are forgiven (voice input adds a "。").
    Passes ``command`` (the word) and ``args`` (the rest, stripped).
    """

    def __init__(self, *words: str) -> None:
        self.words = tuple(sorted((clean_command(w) for w in words), key=len, reverse=True))

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        if not msg.text:
            return False
        text = clean_command(msg.text)
        for word in self.words:
            if text == word or (text.startswith(word) and text[len(word)].isspace()):
                return {"command": word, "args": text[len(word) :].strip()}
        return False


class StateIs(Filter):
    """The resident's conversation is in one of these states (None: in no state)."""

    def __init__(self, *states: str | None) -> None:
        self.states = frozenset(states)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        return ctx.conversation.state in self.states


class Matched(Filter):
    """The matcher's decision on the message's text is one of ``decisions``.

    Passes ``match`` (the :class:`~catalog.matcher.MatchResult`). The matcher runs at
    most once per message, however many handlers ask, and in a worker thread (see
    ``Context.match``).
    """

    def __init__(self, *decisions: str) -> None:
        self.decisions = frozenset(decisions)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        if not msg.text:
            return False
        result = ctx.match()
        return {"match": result} if result.decision in self.decisions else False


class ActIs(Filter):
    """The message's act (``catalog.acts.Act``) is one of ``acts``; passes ``reading``
    (the :class:`~catalog.understanding.Reading`). Read once per message, in a worker
    thread, like ``Matched``."""

    def __init__(self, *acts: str) -> None:
        self.acts = frozenset(acts)

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        if not msg.text:
            return False
        reading = ctx.reading()
        return {"reading": reading} if reading.act in self.acts else False


class Predicate(Filter):
    """Any function of (msg, ctx) as a filter."""

    def __init__(self, function: Callable[[Incoming, Context], Any]) -> None:
        self.function = function

    def __call__(self, msg: Incoming, ctx: Context) -> FilterResult:
        result = self.function(msg, ctx)
        return result if isinstance(result, dict) else bool(result)


@lru_cache(maxsize=64)
def clean_command(text: str) -> str:
    """The text as commands are compared. Cached: each ``Command`` filter a message
    passes asks for it, and NFKC costs time that grows faster than the text."""
    text = unicodedata.normalize("NFKC", text).strip()
    return text.rstrip("。.!！?？~～ ").lower()
