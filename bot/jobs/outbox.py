"""Delivering the outbox: each row to its channel, with retries and backoff.

A worker claims due rows (a lease moves their next attempt ahead, so no other worker
takes them meanwhile, and the worker renews it while it works), sends them outside any
transaction, and records the result: sent; or failed for now (retried with
exponential backoff and jitter); or failed for good after ``max_attempts`` or an error
retrying cannot fix (shown to staff); or unknown (below).

A failed send either certainly did not arrive (a refusal, no connection, no access
token to send it with) and is retried, or may have arrived (a timeout after sending,
HTTP 5xx, a dropped connection; :func:`bot.wechat.errors.may_have_arrived`). What
happens then depends on whether the channel's receiver can recognise a second copy:

* ``webhook`` (repeatable) - the receiver dedupes by the row's key, sent as
  ``Idempotency-Key`` and ``X-Order-Menu-Idempotency-Key``: retried like any failure;
* ``log`` (repeatable) - nothing leaves the process;
* ``wechat``, ``resident`` and ``wecom_robot`` (at most once) - WeChat and WeCom have
  no idempotency key, and a unit or resident must not get a message twice: marked
  ``unknown`` ("it may have arrived"), kept with the error for staff (status
  ``unknown`` in ``om_outbox``, an ERROR log line), never sent again. Each of their
  rows becomes ``sending`` just before its own attempt, so a worker that dies
  mid-send leaves that one row to be settled as ``unknown`` rather than sent again
  after the lease, and the rows of its batch it had not tried yet ``pending``, to be
  sent by the next worker (see :mod:`storage.repositories.outbox`).

Channels:

* ``log`` - the service log (demos);
* ``wecom_robot`` - markdown to a WeCom group robot; the URL (which embeds the
  robot's key) comes from the environment variable the catalog names;
* ``webhook`` - a JSON POST signed with HMAC-SHA256, see :func:`sign` and
  docs/notifications.md for the recipe a unit's system uses to verify it;
* ``wechat`` - template message to the unit's bound members (customer-service
  message when no template is set);
* ``resident`` - customer-service message to a resident; a template outside the
  48-hour window when one is configured.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.jobs.backoff import backoff
from bot.jobs.lease import Lease
from bot.wechat.customer_service import CustomerService
from bot.wechat.errors import (
    NotFollowing,
    OutcomeUnknown,
    WindowClosed,
    describe,
    may_have_arrived,
)
from bot.wechat.transport import request
from storage import models
from storage.repositories import outbox as repo
from storage.repositories.residents import set_following

log = logging.getLogger(__name__)


RETRY_CAP = 3600.0
"""Seconds: the longest wait between two attempts of a notification."""


class Permanent(Exception):
    """A delivery that retrying cannot fix (no such URL configured, not following).

    ``cause`` says why as a code (``bot.jobs.failures.CAUSES``): kept on the row, it
    tells staff in plain words and decides what sends the row again (a member
    binding, the setting appearing)."""

    def __init__(self, message: str, cause: str = "refused") -> None:
        super().__init__(message)
        self.cause = cause


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Order-Menu-Signature``: hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@runtime_checkable
class TemplateSender(Protocol):
    """The WeChat API client can send templates; the development outbox cannot."""

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str], url: str | None = None
    ) -> int: ...


Deliver = Callable[[repo.Claimed], Awaitable[None]]


@dataclass(frozen=True)
class Channel:
    deliver: Deliver
    repeatable: bool
    """A second copy after an ambiguous outcome does no harm (the receiver dedupes by
    the key, or nothing leaves the process): retried. Otherwise at most once."""


class ResidentAccount(Protocol):
    """What the outbox needs of a community's account (``bot.tenants.Account``)."""

    @property
    def customer_service(self) -> CustomerService: ...

    @property
    def resident_template(self) -> str | None: ...


class _Held:
    """The rows of a batch this worker still holds: claimed, no outcome recorded yet.

    ``lock`` keeps the renewal of the claim from overwriting an outcome being recorded
    (a "failed for now" row is ``pending`` with its retry time, and a renewal that
    landed after it would move that time to the end of the lease)."""

    def __init__(self, rows: list[repo.Claimed]) -> None:
        self.rows = {row.id: row for row in rows}
        self.lock = asyncio.Lock()

    def release(self, rows: list[repo.Claimed]) -> None:
        for row in rows:
            self.rows.pop(row.id, None)


class OutboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        accounts: Callable[[str], ResidentAccount],
        communities: Collection[str] | None = None,
        http: aiohttp.ClientSession,
        clock: Clock,
        max_attempts: int = 8,
        lease: dt.timedelta = dt.timedelta(seconds=120),
        renew_every: float | None = None,
        backoff_base: float = 5.0,
        batch: int = 10,
        timeout: float = 10.0,
        budget: float = 1.0,
    ) -> None:
        # A batch can take longer than any fixed lease (every send of one recipient,
        # one after the other): the worker renews its claim while it works
        # (bot.jobs.lease); each row checks, just before its attempt, that it is
        # still this worker's.
        self._lease = Lease(lease, renew_every)
        self._sessionmaker = sessionmaker
        self._accounts = accounts
        self._communities = list(communities) if communities is not None else None
        """Served here: other communities' rows are left to the processes serving them."""
        self._http = http
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._batch = batch
        self._budget = budget
        """Seconds one poll may go on claiming batches while there are more."""
        self._timeout = timeout
        self._channels: dict[str, Channel] = {
            "log": Channel(self._log, repeatable=True),
            "webhook": Channel(self._webhook, repeatable=True),
            "wecom_robot": Channel(self._wecom, repeatable=False),
            "wechat": Channel(self._wechat_unit, repeatable=False),
            "resident": Channel(self._resident, repeatable=False),
        }

    async def run_once(self) -> int:
        """Deliver what is due now, batch after batch for up to ``budget`` seconds;
        the number of rows attempted.

        In a batch, each recipient's messages go out one after the other (a unit
        reads "new order" before its reminder) and different recipients' at the
        same time, so one slow unit system does not hold up everyone else.
        """
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + self._budget
        attempted = 0
        async with self._sessionmaker.begin() as session:
            abandoned = await repo.settle_abandoned(session, now=self._clock.now())
        if abandoned:
            log.error("%d notification(s) left sending by a stopped worker: unknown", abandoned)
        while True:
            async with self._sessionmaker.begin() as session:
                claimed = await repo.claim_due(
                    session,
                    now=self._clock.now(),
                    lease=self._lease.length,
                    limit=self._batch,
                    communities=self._communities,
                )
            by_recipient: dict[tuple[str, str, str], list[repo.Claimed]] = {}
            for message in claimed:
                recipient = (message.community_id, message.channel, message.target)
                by_recipient.setdefault(recipient, []).append(message)
            held = _Held(claimed)
            async with self._lease.kept(functools.partial(self._renew, held), "notifications"):
                outcomes = await asyncio.gather(
                    *(self._deliver_in_order(held, m) for m in by_recipient.values()),
                    return_exceptions=True,  # every recipient's sends end before this returns
                )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
                attempted += outcome
            if len(claimed) < self._batch or loop.time() >= stop_at:
                return attempted

    async def _renew(self, held: _Held) -> None:
        """Renew the claim on the rows still held (see ``bot.jobs.lease``)."""
        async with held.lock:
            if held.rows:
                async with self._sessionmaker.begin() as session:
                    await repo.renew(
                        session,
                        list(held.rows.values()),
                        until=self._lease.until(self._clock.now()),
                    )

    async def _deliver_in_order(self, held: _Held, messages: list[repo.Claimed]) -> int:
        """One recipient's messages, oldest first; how many were attempted. When one
        must be tried again later, the ones after it wait until then too: a unit
        never reads "催办" before the "新订单" it is about."""
        for n, message in enumerate(messages):
            channel = self._channels.get(message.channel)
            async with self._sessionmaker.begin() as session:
                ours = await repo.start_attempt(
                    session,
                    message,
                    until=self._lease.until(self._clock.now()),
                    at_most_once=channel is not None and not channel.repeatable,
                )
            if not ours:
                # Our lease ran out and another worker claimed it: it sends this one,
                # and the ones after it once their leases end, in order.
                held.release(messages[n:])
                log.warning(
                    "notification %s: claimed by another worker meanwhile; left to it",
                    message.key,
                )
                return n
            retry_at = await self._deliver(held, message, channel)
            if retry_at is not None and n + 1 < len(messages):
                later = messages[n + 1 :]
                async with held.lock:
                    held.release(later)
                    async with self._sessionmaker.begin() as session:
                        await repo.postpone(session, later, until=retry_at)
                return n + 1
        return len(messages)

    async def _deliver(
        self, held: _Held, message: repo.Claimed, channel: Channel | None
    ) -> dt.datetime | None:
        """Send one message and record the outcome; when it is to be tried again."""
        error: str | None = None
        permanent = ambiguous = False
        cause = "gave_up"
        try:
            if channel is None:
                raise Permanent(f"unknown channel '{message.channel}'", "channel")
            await channel.deliver(message)
        except Permanent as exc:
            error, permanent, cause = str(exc), True, exc.cause
        except Exception as exc:  # network, HTTP status, WeChat errcodes
            error = describe(exc)
            ambiguous = channel is not None and not channel.repeatable and may_have_arrived(exc)
        now = self._clock.now()
        retry_at: dt.datetime | None = None
        give_up = permanent or message.attempts >= self._max_attempts
        async with held.lock:
            held.release([message])
            async with self._sessionmaker.begin() as session:
                if error is None:
                    await repo.mark_sent(session, message.id, now=now)
                elif ambiguous:
                    await repo.mark_unknown(session, message.id, error)
                else:
                    retry_at = None if give_up else now + self._retry_in(message.attempts)
                    await repo.mark_failed(
                        session, message.id, error, retry_at=retry_at, cause=cause
                    )
        if error is None:
            return None
        if ambiguous:
            # Final: the recipient's next messages go on (it probably has this one).
            log.error(
                "notification %s via %s: sent, no clear answer (%s); it may have "
                "arrived, so it is not sent again (status unknown)",
                message.key,
                message.channel,
                error,
            )
            return None
        log.log(
            logging.ERROR if give_up else logging.WARNING,
            "notification %s via %s failed (%s): %s",
            message.key,
            message.channel,
            "giving up" if give_up else f"attempt {message.attempts}",
            error,
        )
        return retry_at

    def _retry_in(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(
            seconds=backoff(attempts, first=self._backoff_base, cap=RETRY_CAP, jitter=0.2)
        )

    # --- channels ----------------------------------------------------------------------

    async def _log(self, message: repo.Claimed) -> None:
        log.info("notification to %s: %s", message.target, message.payload.get("text", ""))

    async def _wecom(self, message: repo.Claimed) -> None:
        url = _env(message.payload["channel"]["url_env"])
        body = {"msgtype": "markdown", "markdown": {"content": _markdown(message.payload)}}
        # At most once, so on a connection of its own (bot.wechat.transport).
        async with request(
            self._http, "POST", url, json=body, total=self._timeout, fresh=True
        ) as response:
            response.raise_for_status()
            try:
                reply = await response.json(content_type=None)
            except ValueError:  # a 2xx the robot may well have acted on
                raise OutcomeUnknown(-1, "WeCom robot reply is not JSON") from None
        if not isinstance(reply, dict):
            raise OutcomeUnknown(-1, "WeCom robot reply is not a JSON object")
        if reply.get("errcode", 0) != 0:
            raise RuntimeError(f"WeCom robot errcode {reply.get('errcode')}: {reply.get('errmsg')}")

    async def _webhook(self, message: repo.Claimed) -> None:
        channel = message.payload["channel"]
        secret = _env(channel["secret_env"])
        body = json.dumps(
            {
                "id": message.key,
                "unit": message.target,
                "title": message.payload.get("title", ""),
                "text": message.payload.get("text", ""),
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Order-Menu-Timestamp": timestamp,
            "X-Order-Menu-Signature": sign(secret, timestamp, body),
            # The same key on every attempt: the receiver keeps the first and answers
            # 2xx to a repeat, which is what lets an unanswered attempt be retried.
            "X-Order-Menu-Idempotency-Key": message.key,
            "Idempotency-Key": _sf_string(message.key),
        }
        async with request(
            self._http,
            "POST",
            channel["url"],
            data=body,
            headers=headers,
            total=self._timeout,
            fresh=False,  # a repeat is deduped by the key
        ) as response:
            if 400 <= response.status < 500 and response.status not in (408, 429):
                raise Permanent(f"HTTP {response.status} from {channel['url']}", "refused")
            response.raise_for_status()

    def _account(self, message: repo.Claimed) -> ResidentAccount:
        try:
            return self._accounts(message.community_id)
        except LookupError:
            raise Permanent(
                f"community '{message.community_id}' is not served here", "community"
            ) from None

    async def _wechat_unit(self, message: repo.Claimed) -> None:
        member = message.payload.get("member")
        if member:  # one row per member (see bot.orders.effects.notify_unit)
            await self._to_member(member, message)
            return
        async with self._sessionmaker() as session:
            members = list(
                await session.scalars(
                    select(models.UnitMember.openid)
                    .join(models.Unit, models.UnitMember.unit_id == models.Unit.id)
                    .where(
                        models.Unit.community_id == message.community_id,
                        models.Unit.key == message.target,
                        models.UnitMember.active.is_(True),
                    )
                )
            )
        if not members:
            raise Permanent(f"unit '{message.target}' has no bound members yet", "no_member")
        for openid in members:  # a row enqueued before per-member rows existed
            await self._to_member(openid, message)

    async def _to_member(self, openid: str, message: repo.Claimed) -> None:
        cs = self._account(message).customer_service
        template = message.payload["channel"].get("template_id")
        if template and isinstance(cs, TemplateSender):
            title = message.payload.get("title", "")
            data = {"first": title, "remark": message.payload["text"]}
            await cs.send_template(openid, template, data)
        else:
            await cs.send_text(openid, _plain(message.payload))

    async def _resident(self, message: repo.Claimed) -> None:
        account = self._account(message)
        cs, template = account.customer_service, account.resident_template
        try:
            try:
                await cs.send_text(message.target, message.payload["text"])
            except WindowClosed:
                if not (template and isinstance(cs, TemplateSender)):
                    raise Permanent(
                        "45015: outside the 48-hour window and no WECHAT_RESIDENT_TEMPLATE_ID",
                        "window_closed",
                    ) from None
                data = {"first": "社区服务提醒", "remark": message.payload["text"]}
                await cs.send_template(message.target, template, data)
        except NotFollowing:
            async with self._sessionmaker.begin() as session:
                await set_following(
                    session, message.community_id, message.target, False, now=self._clock.now()
                )
            raise Permanent(
                "43004: the resident no longer follows the account", "not_following"
            ) from None


def _sf_string(value: str) -> str:
    """A Structured Field string (RFC 8941), the form the IETF Idempotency-Key header
    draft gives its value: quoted, with ``\\`` and ``"`` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise Permanent(f"environment variable {name} is not set", f"setting:{name}")
    return value


def _plain(payload: dict[str, Any]) -> str:
    return str(payload.get("text", ""))


def _markdown(payload: dict[str, Any]) -> str:
    lines = str(payload.get("text", "")).splitlines()
    if not lines:
        return ""
    return "\n".join([f"**{lines[0]}**", *(f"> {line}" for line in lines[1:])])
