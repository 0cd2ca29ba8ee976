"""Routers and the dispatcher: which handler answers a message.

As in aiogram 3, each module of ``handlers/`` declares one :class:`Router` and
registers handlers with filters; the dispatcher includes the routers in a fixed
order and gives a message to the first handler whose filters all pass. A handler is
``async def handler(msg, ctx, **filter_results) -> str | None``: it receives only
the arguments it names, and returns the text of the reply (None: no reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock, SystemClock
from bot.dispatch.filters import Filter
from bot.orders.effects import Policy
from bot.pipeline.state import Conversation
from bot.pipeline.unit_of_work import Sessions, UnitOfWork
from bot.wechat.inbound import Incoming
from catalog.matcher import Matcher, MatchResult
from catalog.model import Catalog
from catalog.understanding import Reading, understand
from storage.errors import database_unavailable

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[str | None]]


@dataclass
class Context:
    """What a handler may use besides the message itself."""

    community_id: str
    openid: str
    """Who sent the message."""
    catalog: Catalog
    matcher: Matcher
    conversation: Conversation
    sessionmaker: Sessions
    """Sessions of the message's unit of work (see ``bot.pipeline.unit_of_work``): nothing a
    handler writes is committed before the message's reply is recorded."""
    message_key: str
    """The message's dedupe key: effects keyed by it happen once however often it comes."""
    text: str = ""
    policy: Policy = field(default_factory=Policy)
    """Delays and calendars of reminders (see ``bot.orders.effects``)."""
    clock: Clock = field(default_factory=SystemClock)
    matching: Executor | None = None
    """Where the matcher runs (None: asyncio's default executor)."""
    unit: UnitOfWork | None = None
    """The message's unit of work, when there is one: rolled back if a handler fails,
    so that a failed message leaves nothing behind (see ``Dispatcher``)."""
    _reading: Reading | None = field(default=None, repr=False)

    def reading(self) -> Reading:
        """What the message means (act, catalog item, FAQ answer), for filters.

        Reading is CPU work (segmentation, pinyin, scoring; milliseconds for a long
        message) and is never done on the event loop, where it would hold up every
        other request. Until :meth:`read` has run, this raises :class:`MatchNeeded`;
        the dispatcher then reads the message and asks again.
        """
        if self._reading is None:
            raise MatchNeeded
        return self._reading

    def match(self) -> MatchResult:
        """The catalog matcher's part of :meth:`reading`."""
        return self.reading().match

    async def read(self) -> Reading:
        """The message's reading: computed once, in a worker thread."""
        if self._reading is None:
            loop = asyncio.get_running_loop()
            self._reading = await loop.run_in_executor(
                self.matching, understand, self.text, self.matcher
            )
        return self._reading

    async def read_match(self) -> MatchResult:
        return (await self.read()).match


class MatchNeeded(Exception):
    """A filter wants the message's reading before it was read (see ``Context.reading``)."""


class Redispatch(Exception):
    """Raised by a handler whose question the message did not answer because it is
    clearly something else (a new request, an outcome, a cancellation): the handler has
    left its conversation state, and the dispatcher offers the message again from the
    top, putting ``note`` (a word on what became of the pending question) before the
    reply. At most once per message."""

    def __init__(self, note: str = "") -> None:
        super().__init__(note)
        self.note = note


@dataclass(frozen=True)
class _Registered:
    handler: Handler
    filters: tuple[Filter, ...]
    accepts: frozenset[str] | None
    """Names of the handler's keyword parameters; None when it takes ``**kwargs``."""


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[_Registered] = []
        self._children: list[Router] = []

    def on(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Register the decorated handler for messages passing all ``filters``."""

        def register(handler: Handler) -> Handler:
            parameters = inspect.signature(handler).parameters.values()
            variadic = any(p.kind is p.VAR_KEYWORD for p in parameters)
            accepts = None if variadic else frozenset(p.name for p in parameters)
            self._handlers.append(_Registered(handler, filters, accepts))
            return handler

        return register

    def include(self, *routers: Router) -> None:
        """Children are tried after this router's own handlers, in the order given."""
        self._children.extend(routers)

    def resolve(self, msg: Incoming, ctx: Context) -> tuple[Handler, dict[str, Any], str] | None:
        """The first handler that wants the message, its arguments, and its router."""
        for registered in self._handlers:
            found: dict[str, Any] = {}
            for f in registered.filters:
                result = f(msg, ctx)
                if not result:
                    break
                if isinstance(result, dict):
                    found.update(result)
            else:
                arguments = {"msg": msg, "ctx": ctx, **found}
                if registered.accepts is not None:
                    arguments = {k: v for k, v in arguments.items() if k in registered.accepts}
                return registered.handler, arguments, self.name
        for child in self._children:
            resolved = child.resolve(msg, ctx)
            if resolved is not None:
                return resolved
        return None


ErrorHandler = Callable[[Incoming, Context, Exception], Awaitable[str | None]]


class Dispatcher(Router):
    """The root router. A handler's exception goes to one error handler, which logs it
    and gives the resident a polite reply instead of silence."""

    def __init__(
        self,
        error_handler: ErrorHandler | None = None,
        *,
        expired_notice: str = "",
        noticed_states: frozenset[str] = frozenset(),
        first_routers: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__("root")
        self._error_handler = error_handler or _apologise
        self._expired_notice = expired_notice
        """Put before the reply when the resident's conversation had timed out in one
        of ``noticed_states`` (a booking half made, not a menu)."""
        self._noticed_states = noticed_states
        self._first_routers = first_routers
        """Routers whose reply nothing may precede (emergency advice)."""

    async def feed(self, msg: Incoming, ctx: Context) -> str | None:
        notes: list[str] = []
        router = ""
        for attempt in range(2):
            try:
                reply, router = await self._feed_once(msg, ctx)
            except Redispatch as again:
                if attempt:
                    log.error("message %s redispatched twice; answered as is", msg.key)
                    return again.note or None
                notes.append(again.note)
                continue
            break
        if router in self._first_routers:
            return reply
        expired = ctx.conversation.expired_state in self._noticed_states
        if reply and expired and self._expired_notice:
            reply = f"{self._expired_notice}\n{reply}"
        if reply and any(notes):
            reply = "\n".join([*filter(None, notes), reply])
        return reply

    async def _feed_once(self, msg: Incoming, ctx: Context) -> tuple[str | None, str]:
        """The reply, and the name of the router that gave it."""
        try:
            resolved = self.resolve(msg, ctx)
        except MatchNeeded:
            # A filter wants the reading: read in a thread and resolve again, which is
            # safe because filters are plain functions of the message and the context.
            await ctx.read()
            resolved = self.resolve(msg, ctx)
        if resolved is None:
            return None, ""
        handler, arguments, router = resolved
        if msg.text:
            # Read before the handler touches the database: on SQLite the message's
            # transaction holds the write lock from its first statement, and a read
            # waits for the one matching thread.
            await ctx.read()
        before = ctx.conversation.snapshot()
        try:
            return await handler(**arguments), router
        except Redispatch:
            raise
        except Exception as exc:
            ctx.conversation.restore(before)  # as if the message had not come
            if ctx.unit is not None:
                # Nothing of a message whose handler failed is kept (the apology is
                # recorded in a fresh transaction). A savepoint per handler would do it
                # more finely, but on SQLite it would take the write lock for the whole
                # of every handler, reads and waits included.
                with contextlib.suppress(Exception):  # the database may be away
                    await ctx.unit.rollback()
            if database_unavailable(exc):
                # Not the message's fault, and its effects were not saved: an apology
                # would tell WeChat it arrived. Unacknowledged, it is sent again.
                raise
            log.exception("handler %s.%s failed on %s", router, handler.__name__, msg.key)
            return await self._error_handler(msg, ctx, exc), router


SORRY = "抱歉，系统刚才出了点小问题，请稍后再发一次。给您添麻烦了！"


async def _apologise(msg: Incoming, ctx: Context, exc: Exception) -> str | None:
    return SORRY
