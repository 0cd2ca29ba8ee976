"""From a decoded message to its reply: the webhook's pipeline.

The steps run in this fixed order, and the order matters:

1. **Claim** the message in the ledger (``bot.ledger``): a retry of a message
   already handled gets the same reply, and never a second run of its effects.
2. **Deadline**: the rest runs as a task the request waits for at most
   ``REPLY_DEADLINE`` seconds (WeChat gives up after 5). A late reply is not lost:
   the request answers ``success`` and the reply goes out through the
   customer-service API when it is ready.
3. **Resident lock**, taken *before* the state is read: one resident's messages are
   handled one at a time, in order, whichever process received them
   (``bot.resident_locks``).
4. **State** loaded, the **dispatcher** picks the handler, the state is saved.
5. **Finish**: the reply is recorded in the ledger (with the resident's 48-hour
   window and the new state, in one transaction) before it is sent, so a retry
   arriving now gets the same one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.dispatch import Context, Dispatcher
from bot.ledger import MessageLedger, Status
from bot.locks import KeyedLocks
from bot.metrics import HANDLER_SECONDS, MESSAGES
from bot.order_effects import Policy
from bot.state import StateStorage
from bot.tasks import BackgroundTasks
from bot.wechat.inbound import Incoming, text_reply
from catalog.live import LiveCatalog
from storage.errors import database_unavailable

log = logging.getLogger(__name__)

# Events that are not a resident turning to us: they neither open the 48-hour
# customer-service window nor make a resident out of an unknown openid.
PASSIVE_EVENTS = frozenset({"unsubscribe", "templatesendjobfinish", "masssendjobfinish"})


_Processed = tuple[str | None, str | None]
"""(reply text, reply XML) of a handled message."""


class Locks(Protocol):
    def __call__(self, key: str) -> AbstractAsyncContextManager[None]: ...


class CustomerService(Protocol):
    """Where replies that missed the deadline go: WeChat's customer-service API."""

    async def send_text(self, openid: str, text: str) -> None: ...


@dataclass(frozen=True)
class SentLater:
    seq: int
    openid: str
    text: str


class DevOutbox:
    """Stands in for the customer-service API when no WeChat credentials are set
    (development, ``order-menu chat``, the simulator): late replies are kept here,
    numbered, and logged; ``GET /dev/outbox`` hands them out."""

    def __init__(self, size: int = 1000) -> None:
        self.sent: deque[SentLater] = deque(maxlen=size)
        self._seq = itertools.count(1)

    async def send_text(self, openid: str, text: str) -> None:
        log.info("late reply to %s (no WeChat credentials; kept locally): %s", openid, text)
        self.sent.append(SentLater(next(self._seq), openid, text))

    def after(self, seq: int, openid: str | None = None) -> list[SentLater]:
        return [m for m in self.sent if m.seq > seq and openid in (None, m.openid)]


@dataclass(frozen=True)
class Outcome:
    reply_xml: str | None
    """The passive reply (plaintext XML); None: answer "success"."""
    status: Status
    """NEW when this request handled the message, else what the ledger said."""


class Webhook:
    def __init__(
        self,
        *,
        community_id: str,
        catalog: LiveCatalog,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: MessageLedger,
        states: StateStorage,
        dispatcher: Dispatcher,
        customer_service: CustomerService,
        tasks: BackgroundTasks,
        deadline: float,
        policy: Policy,
        clock: Clock,
        locks: Locks | None = None,
        matching: Executor | None = None,
        retry_pauses: tuple[float, ...] = (2.0, 5.0, 15.0, 30.0, 60.0),
    ) -> None:
        self.community_id = community_id
        self.catalog = catalog
        self.sessionmaker = sessionmaker
        self.ledger = ledger
        self.states = states
        self.dispatcher = dispatcher
        self.customer_service = customer_service
        self.tasks = tasks
        self.deadline = deadline
        self.policy = policy
        self.clock = clock
        self.retry_pauses = retry_pauses
        """Before each new run of an answered message the database failed."""
        self.locks: Locks = locks or KeyedLocks()
        """Per resident, taken before the state is read (bot.resident_locks across
        processes; in-process only when none is given)."""
        self.matching = matching
        """The worker thread that runs the matcher, off the event loop (see
        ``Context.match``); None: asyncio's default executor."""

    async def handle(self, msg: Incoming, *, started: float | None = None) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = (started if started is not None else loop.time()) + self.deadline
        key = msg.key
        claim = await self.ledger.claim(key)
        if claim.status is Status.RUNNING:
            claim = await self.ledger.wait(key, deadline - loop.time())
        if claim.status is not Status.NEW:
            log.debug("retry of %s: %s", key, claim.status.value)
            return Outcome(claim.reply if claim.status is Status.DONE else None, claim.status)

        task = self.tasks.spawn(self._process(msg), name=f"message {key}")
        # asyncio.wait, unlike wait_for, never cancels the task: it goes on after the
        # deadline, and its reply is delivered late.
        await asyncio.wait((task,), timeout=max(deadline - loop.time(), 0))
        if not task.done():
            log.warning("reply to %s not ready in %.1f s: sending it later", key, self.deadline)
            await self.ledger.defer(key)
            self.tasks.spawn(self._deliver_late(msg, task), name=f"late reply {key}")
            return Outcome(None, Status.NEW)
        return Outcome(task.result()[1], Status.NEW)

    async def _process(self, msg: Incoming) -> _Processed:
        """Run the handlers; return (reply text, reply XML) once the reply is recorded."""
        key = msg.key
        state_key = (self.community_id, msg.openid)
        MESSAGES.labels(kind=msg.event if msg.kind == "event" else msg.kind).inc()
        began = time.perf_counter()
        try:
            async with self.locks(f"{self.community_id}:{msg.openid}"):
                conversation = await self.states.load(state_key)
                live = self.catalog
                ctx = Context(
                    community_id=self.community_id,
                    openid=msg.openid,
                    catalog=live.current,
                    matcher=live.matcher,
                    conversation=conversation,
                    sessionmaker=self.sessionmaker,
                    message_key=key,
                    text=msg.text,
                    policy=self.policy,
                    clock=self.clock,
                    matching=self.matching,
                )
                text = await self.dispatcher.feed(msg, ctx)
                HANDLER_SECONDS.observe(time.perf_counter() - began)
                reply_xml = text_reply(msg, text) if text else None
                interactive = msg.kind != "event" or msg.event not in PASSIVE_EVENTS
                # The new state and the reply are saved in one transaction: a retry
                # finds either neither (and runs the message again on the old state)
                # or both (and gets the reply), never the new state without the reply.
                save_state = await self.states.save_step(state_key, conversation)
                await self.ledger.finish(
                    key,
                    reply_xml,
                    resident=msg.openid if interactive else None,
                    also=save_state,
                )
        except BaseException:
            # Nothing recorded: the claim lapses and a retry of WeChat's runs it again.
            await self.ledger.release(key)
            raise
        return text, reply_xml

    async def _deliver_late(self, msg: Incoming, task: asyncio.Task[_Processed]) -> None:
        """Send a reply that missed the deadline. WeChat was told "success" and will
        not send the message again, so it is ours to finish: if the database was away,
        run the message again once it is back (a few tries over about two minutes)."""
        for pause in (*self.retry_pauses, None):
            try:
                text, _ = await task
                break
            except Exception as exc:
                if pause is None or not database_unavailable(exc):
                    raise
                log.warning(
                    "answered message %s failed (%s): again in %.0f s",
                    msg.key,
                    type(exc).__name__,
                    pause,
                )
                await asyncio.sleep(pause)
                # Its claim stays (marked deferred: a retry from WeChat would get
                # "success"), so the message is this process's to run again.
                task = self.tasks.spawn(self._process(msg), name=f"again {msg.key}")
        if text:
            await self.customer_service.send_text(msg.openid, text)
