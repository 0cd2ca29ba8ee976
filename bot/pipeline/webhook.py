"""From a decoded message to its reply: the webhook's pipeline.

:meth:`Webhook.handle` does, in this order:

1. **Claim** the message in the ledger (``bot.pipeline.ledger``): a retry of a message
   already handled gets the same reply, and never a second run of its effects. The
   claim's owner token fences this attempt: if another takes the claim over, this
   one can no longer commit.
2. **Deadline**: the rest runs as a task the request waits for at most
   ``REPLY_DEADLINE`` seconds (WeChat gives up after 5). Past it, the message is
   stored with its claim (*deferred*) before the request answers ``success``: the
   reply then goes out through the outbox, and if this process dies first, any
   process runs the message again (:meth:`Webhook.rerun_deferred`).

The task runs the message through a chain of middlewares, outermost first; the
order is fixed and matters (:meth:`Webhook._process`):

* **release**: if anything below fails, the claim is let go (a retry, or for a
  deferred message the scheduler, runs it again); a claim taken over is left alone.
* **resident lock**, taken *before* the state is read: one resident's messages are
  handled one at a time, in order, whichever process received them
  (``bot.pipeline.resident_locks``). It is an optimisation, not the guarantee: the state's
  version and the claim's token are.
* **state**: the conversation, loaded with its version.
* **transaction** (``bot.pipeline.unit_of_work``): the handler's effects, the state saved
  compare-and-set, the reply recorded by the claim's owner and, for a deferred
  message, the reply as an outbox row, all commit together or not at all.
* **handler**: the dispatcher picks it (in a savepoint of its own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.dispatch import Context, Dispatcher
from bot.dispatch.router import SORRY
from bot.jobs.backoff import backoff
from bot.locks import KeyedLocks
from bot.metrics import HANDLER_SECONDS, MESSAGES
from bot.orders.effects import RESIDENT, Policy
from bot.pipeline.ledger import ClaimLost, LateReply, MessageLedger, Status
from bot.pipeline.state import Conversation, StateStorage
from bot.pipeline.unit_of_work import UnitOfWork
from bot.tasks import BackgroundTasks
from bot.wechat.inbound import Incoming, text_reply
from catalog.live import LiveCatalog
from storage.repositories import ledger as ledger_repo
from storage.repositories import outbox

log = logging.getLogger(__name__)

# Events that are not a resident turning to us: they neither open the 48-hour
# customer-service window nor make a resident out of an unknown openid.
PASSIVE_EVENTS = frozenset({"unsubscribe", "templatesendjobfinish", "masssendjobfinish"})


MAX_RUNS = 5
"""Runs of a deferred message before it is given up (and the resident told)."""
WECHAT_PATIENCE = 5.0
"""Seconds WeChat waits for an answer before it retries."""
TAKEOVER_LOCK_WAIT = 2.0
"""Seconds a taken-over message waits for its resident's lock before going on
without it: the attempt holding it is presumed dead, and if it is only stalled, the
claim's token and the state's version keep it from committing."""


def late_key(community_id: str, message_key: str) -> str:
    """The outbox key of a late reply: one per message of each community's account (the
    same MsgId may come to two accounts)."""
    return f"late:{community_id}:{message_key}"


def encode(msg: Incoming) -> str:
    """A message as stored with a deferred claim."""
    return json.dumps(asdict(msg), ensure_ascii=False, default=str)


def decode(payload: str) -> Incoming:
    return Incoming(**json.loads(payload))


@dataclass
class Attempt:
    """One run of one message through the middlewares; each fills in its part."""

    msg: Incoming
    token: str
    """The claim's owner token (see ``bot.pipeline.ledger``)."""
    retry_in: float = 2.0
    """If this run fails, when a deferred message is run again."""
    takeover: bool = False
    """The claim was taken over from an attempt presumed dead: it may still hold the
    resident's lock (stalled, not dead), so the lock is not waited on for long."""
    conversation: Conversation = field(default_factory=Conversation)
    unit: UnitOfWork | None = None
    text: str | None = None
    reply_xml: str | None = None


Step = Callable[[Attempt], Awaitable[None]]
Middleware = Callable[[Attempt, Step], Awaitable[None]]


class Locks(Protocol):
    def __call__(
        self, key: str, *, max_wait: float | None = None
    ) -> AbstractAsyncContextManager[None]: ...


class MessageBusy(Exception):
    """The message could not be answered in time and is not known to be stored: it must
    not be acknowledged (the web layer answers 503, and WeChat retries)."""


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
        tasks: BackgroundTasks,
        deadline: float,
        policy: Policy,
        clock: Clock,
        locks: Locks | None = None,
        matching: Executor | None = None,
    ) -> None:
        self.community_id = community_id
        self.catalog = catalog
        self.sessionmaker = sessionmaker
        self.ledger = ledger
        self.states = states
        self.dispatcher = dispatcher
        self.tasks = tasks
        self.deadline = deadline
        self.policy = policy
        self.clock = clock
        # Not ``locks or …``: a lock table with no lock held has length 0 and is false,
        # which silently replaced the cross-process locks by in-process ones.
        self.locks: Locks = locks if locks is not None else KeyedLocks()
        """Per resident, taken before the state is read (bot.pipeline.resident_locks across
        processes; in-process only when none is given)."""
        self.matching = matching
        """The worker thread that runs the matcher, off the event loop (see
        ``Context.match``); None: asyncio's default executor."""
        self.max_runs = MAX_RUNS
        self.rerun_pause = 2.0
        """Before the second run of a deferred message that failed; doubled after each."""
        self.middlewares: tuple[Middleware, ...] = (
            self._release_on_failure,
            self._resident_lock,
            self._load_state,
            self._transaction,
        )
        """Outermost first; see the module docstring for why in this order."""

    async def handle(self, msg: Incoming, *, started: float | None = None) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = (started if started is not None else loop.time()) + self.deadline
        key = msg.key
        claim = await self.ledger.claim(key)
        takeover = claim.status is Status.RUNNING
        if takeover:
            claim = await self.ledger.wait(key, deadline - loop.time())
            if claim.status is Status.RUNNING:
                if await self.ledger.defer_for_owner(key, encode(msg)):
                    # The attempt holding it missed WeChat's time (stalled, or killed
                    # before it could defer): "success" only once the message is stored.
                    log.warning("%s still running elsewhere after the retry's wait: deferred", key)
                    return Outcome(None, Status.DEFERRED)
                # It finished, or its claim was given up, meanwhile: look again (a
                # claim given up is taken here, and run below at once).
                claim = await self.ledger.wait(key, 0)
                if claim.status is Status.RUNNING:
                    raise MessageBusy(key)
        if claim.status is not Status.NEW:
            log.debug("retry of %s: %s", key, claim.status.value)
            return Outcome(claim.reply if claim.status is Status.DONE else None, claim.status)

        task = self.tasks.spawn(
            self._process(msg, claim.token, takeover=takeover), name=f"message {key}"
        )
        # asyncio.wait, unlike wait_for, never cancels the task: it goes on after the
        # deadline, and its reply is delivered late.
        await asyncio.wait((task,), timeout=max(deadline - loop.time(), 0))
        if not task.done():
            # Stored before "success" is answered: from here on nobody will send the
            # message again, so it must survive this process. Within what is left of
            # WeChat's patience: a passive reply later than that reaches nobody.
            budget = max(WECHAT_PATIENCE - self.deadline - 0.2, 0.3)
            try:
                deferred = await asyncio.wait_for(
                    self.ledger.defer(key, claim.token, encode(msg)), budget
                )
            except TimeoutError:
                # Not known to be stored: not acknowledged. WeChat's retry finds it
                # deferred, finished, or still running (and stores it then).
                self.tasks.spawn(self._settle_late(key, task), name=f"late reply {key}")
                raise MessageBusy(key) from None
            if deferred:
                log.warning("reply to %s not ready in %.1f s: sending it later", key, self.deadline)
                self.tasks.spawn(self._settle_late(key, task), name=f"late reply {key}")
                return Outcome(None, Status.NEW)
            await asyncio.wait((task,))  # it was recorded meanwhile: answer it now
        try:
            attempt = task.result()
        except ClaimLost:  # another attempt took the message over and answers it
            return Outcome(None, Status.RUNNING)
        return Outcome(attempt.reply_xml, Status.NEW)

    async def _settle_late(self, key: str, task: asyncio.Task[Attempt]) -> None:
        """Wait for a deferred message's run. Its reply goes out through the outbox
        row written with it; if it failed, the claim was handed to the scheduler."""
        try:
            await task
        except ClaimLost:
            log.info("deferred message %s was taken over by another attempt", key)
        except Exception:
            log.warning("deferred message %s failed: it will be run again", key, exc_info=True)

    async def rerun_deferred(self, limit: int = 10) -> int:
        """Run again the deferred messages whose attempt died or failed (a scheduled
        job of every process: the claims share them out). Returns how many ran."""
        taken = await self.ledger.take_deferred(limit)
        for message in taken:
            retry_in = backoff(message.attempts, first=self.rerun_pause, cap=600.0)
            try:
                msg = decode(message.payload)
                await self._process(msg, message.owner, retry_in=retry_in, takeover=True)
            except ClaimLost:
                continue
            except Exception as exc:
                log.warning("deferred message %s failed (run %d)", message.key, message.attempts)
                if message.attempts >= self.max_runs or not message.payload:
                    try:
                        await self._give_up(
                            message.key, message.owner, exc, payload=message.payload
                        )
                    except Exception:  # the database away: the lease brings it back
                        log.warning("could not give up %s", message.key, exc_info=True)
        return len(taken)

    async def _give_up(self, key: str, token: str, exc: Exception, *, payload: str) -> None:
        """A deferred message that keeps failing: settle it with its error, and tell
        the resident (once) to send it again rather than leave them waiting."""
        log.error("deferred message %s given up after %d runs: %r", key, self.max_runs, exc)
        self.ledger.finished(key)
        openid = json.loads(payload).get("openid") if payload else None
        async with self.sessionmaker.begin() as session:
            settled = await session.run_sync(
                lambda s: ledger_repo.give_up(
                    s.connection(), self.community_id, key, owner=token, error=repr(exc)
                )
            )
            if settled and openid:
                await outbox.enqueue(
                    session,
                    community_id=self.community_id,
                    key=late_key(self.community_id, key),
                    channel=RESIDENT,
                    target=openid,
                    payload={"text": SORRY},
                )

    async def _process(
        self, msg: Incoming, token: str, *, retry_in: float = 2.0, takeover: bool = False
    ) -> Attempt:
        """Run the message through the middlewares; the attempt, once its reply is
        recorded."""
        attempt = Attempt(msg, token, retry_in=retry_in, takeover=takeover)
        chain = self.middlewares

        async def step(index: int, current: Attempt) -> None:
            if index == len(chain):
                await self._dispatch(current)
            else:
                await chain[index](current, lambda a: step(index + 1, a))

        await step(0, attempt)
        return attempt

    # --- the middlewares, outermost first ----------------------------------------------

    async def _release_on_failure(self, attempt: Attempt, next_step: Step) -> None:
        key = attempt.msg.key
        try:
            await next_step(attempt)
        except ClaimLost:
            self.ledger.finished(key)  # not ours any more: nothing to give back
            raise
        except BaseException:
            # Nothing recorded: a retry of WeChat's (or the scheduler, for a deferred
            # message) runs it again.
            await self.ledger.release(key, attempt.token, retry_in=attempt.retry_in)
            raise
        self.ledger.finished(key)

    async def _resident_lock(self, attempt: Attempt, next_step: Step) -> None:
        wait = TAKEOVER_LOCK_WAIT if attempt.takeover else None
        async with self.locks(f"{self.community_id}:{attempt.msg.openid}", max_wait=wait):
            await next_step(attempt)

    async def _load_state(self, attempt: Attempt, next_step: Step) -> None:
        attempt.conversation = await self.states.load((self.community_id, attempt.msg.openid))
        await next_step(attempt)

    async def _transaction(self, attempt: Attempt, next_step: Step) -> None:
        msg = attempt.msg
        unit = attempt.unit = UnitOfWork(self.sessionmaker)
        try:
            await next_step(attempt)
            attempt.reply_xml = text_reply(msg, attempt.text) if attempt.text else None
            # A state saved on a stale reading raises StateConflict; a claim taken
            # over raises ClaimLost: either way nothing of this attempt is kept.
            save_state = await self.states.save_step(
                (self.community_id, msg.openid), attempt.conversation
            )
            interactive = msg.kind != "event" or msg.event not in PASSIVE_EVENTS
            resident = msg.openid if interactive else None
            late = (
                LateReply(late_key(self.community_id, msg.key), RESIDENT, msg.openid, attempt.text)
                if attempt.text
                else None
            )
            if not unit.session.in_transaction():
                # The handler wrote nothing: the record goes with other messages' in
                # one transaction (group commit), the same steps in a savepoint.
                await self.ledger.finish(
                    msg.key,
                    attempt.token,
                    attempt.reply_xml,
                    resident=resident,
                    also=save_state,
                    late=late,
                )
                return
            if save_state is not None:
                await unit.run(save_state)
            record = self.ledger.finish_step(
                msg.key, attempt.token, attempt.reply_xml, resident=resident
            )
            if await unit.run(record) and late is not None:
                await outbox.enqueue(
                    unit.session,
                    community_id=self.community_id,
                    key=late.key,
                    channel=late.channel,
                    target=late.openid,
                    payload={"text": late.text},
                )
            await unit.commit()
        finally:
            await unit.close()

    async def _dispatch(self, attempt: Attempt) -> None:
        msg = attempt.msg
        MESSAGES.labels(kind=msg.event if msg.kind == "event" else msg.kind).inc()
        began = time.perf_counter()
        live = self.catalog
        assert attempt.unit is not None
        ctx = Context(
            community_id=self.community_id,
            openid=msg.openid,
            catalog=live.current,
            matcher=live.matcher,
            conversation=attempt.conversation,
            sessionmaker=attempt.unit,
            message_key=msg.key,
            text=msg.text,
            policy=self.policy,
            clock=self.clock,
            matching=self.matching,
            unit=attempt.unit,
        )
        attempt.text = await self.dispatcher.feed(msg, ctx)
        HANDLER_SECONDS.observe(time.perf_counter() - began)
