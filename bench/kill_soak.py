#!/usr/bin/env python3
"""Kill soak: two ``serve`` processes on one PostgreSQL database, one of them SIGKILLed
every few seconds, while WeChat traffic goes on; then every effect is counted.

    .venv/bin/python bench/kill_soak.py [--duration 600] [--kill-every 20] [--rate 10]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
        [--reply-deadline S] [--accept-share 0.7] [--offer-timeout 60] [--seed N] [--keep]

    With --reply-deadline well under the handlers' time (e.g. 0.03) a real share of
    messages is answered "success" and deferred, so that kills hit deferred messages.

    Develop with short runs: --duration 60 --kill-every 10

What runs. A database ``killsoak_<random>`` is created on the server of
--database-url (trust auth; the URL's own database only serves to connect) and
dropped at the end (--keep keeps it, and the temp dir with both servers' logs). Two
``python -m bot serve`` processes, each on its own port, serve the same community
(the catalog of bench/soak.py plus 大型义诊, whose sessions have 2 places each). Their
outbound WeChat API is the fake of tests/fake_wechat.py, run in this process, so
every message either process sends is counted where it arrives.

A tiny WeChat in this process sends each message to one of the two processes, picked
at random, and like the real one retries the *same* message (same MsgId, or for
events the same CreateTime; fresh timestamp, nonce and signature) up to 3 more times,
after a 5 s timeout, a connection error or a 5xx, each time to a process picked at
random again. A message is *acknowledged* when an attempt got a reply or "success"
(WeChat then stops retrying); a message answered "success" is a *late* one: its reply
must come through the customer-service API, and the scripted sender waits for it
there (--late-timeout) before going on. After the 4th failed attempt WeChat gives up;
the person then starts afresh (a resident sends 取消 first; a unit member types the
same command again as a new message).

Every --kill-every s (after the set-up) one of the two processes, at random, gets
SIGKILL and is started again at once. The traffic, open-loop at --rate msg/s
(the scheduler of bench/soak.py, with its scripted people), mixes:

* residents following, subscribing to 反诈, asking 我的订单, and ordering whole
  conversations up to 确认 (bench/soak.py's ``Conversation``);
* unit members taking each order through 接单, 开始, 完成 by chat;
* staff re-dispatching a share of the orders A→B→A through the console's HTTP API
  (``POST /console/orders/CODE/dispatch`` with a note unique to the step). Like a
  person at the console, after an error the bench looks whether the step was made
  (an event with its note) before trying it again;
* every --wave-every s a wave of --wave-size residents books 大型义诊 together: all
  reach the summary, then all send 确认 at once; two get the places, the others are
  told the session just filled and answer 候补 (waitlist); then one who got a place
  cancels it (取消订单 CODE), and the other orders go to the clinic's members. The
  freed place is offered (outbox) to the first on the list: who gets the offer takes
  it up (--accept-share: 要, the remaining questions, 确认) or hands it on (不要了),
  and the next gets it; those waiting wait at most --offer-timeout s;
* at --broadcast-at s, ``order-menu broadcast create --topic anti-fraud --yes``.

Then the kills stop and the run drains (--drain-timeout: the outbox, reminders and
the broadcast finish, leases of rows a killed process held run out).

The counts printed at the end (exit status 1 if any "exactly once" line is off, 2
if the run could not be set up):

* messages: sent (distinct messages), HTTP attempts, acknowledged with a reply,
  acknowledged with "success" (late), not acknowledged after 4 attempts, refused
  (HTTP 4xx). Attempts' failures by kind. Informational: a message WeChat gave up
  on may or may not have had its effect.
* 确认 acknowledged → orders: for each acknowledged 确认, the orders whose
  ``message_key`` is that message. Expected exactly one, except when its reply said
  the session was full (then none). missing = none found, duplicated = more than one
  (or a reply naming another order's code).
* unit commands acknowledged → events: per order and status asked (接单/开始/完成)
  by an acknowledged command whose reply said it was done, was already so, or was
  "success": that order's events to that status. Expected exactly one.
* resident cancellations → events: acknowledged 取消订单 → cancelled events, one.
* waitlist joins → entries: acknowledged 候补 → waitlist rows of the resident, one
  per join.
* staff re-dispatches → events: a dispatch answered 302 (or, after an error, seen
  made) → events carrying its note, one.
* notifications expected per event → outbox rows: from the order events in the
  database, what each one promises: a dispatch tells every active member of the unit
  (``placed:CODE:EVENT:…``), an acceptance/start/completion tells the resident
  (``resident:STATUS:CODE:EVENT``), a resident's cancellation tells the unit's
  members (``cancelled:CODE:…``). missing = promised, no row; duplicated = rows of
  that event beyond the promise (rows no event explains are listed as extra).
* outbox rows → received: each WeChat row (to a member or a resident) against the
  messages the fake WeChat accepted, matched by (recipient, text) as multisets
  (re-dispatch A→B→A gives A's members the same text twice, as two rows). missing =
  fewer received than rows (a row left "unknown" by a kill mid-send that never went
  out counts here), duplicated = more. Outbox statuses are shown beside.
* broadcast deliveries → received: each delivery row of the broadcast (one per
  subscriber when it ran) against the residents that received its title; also the
  residents whose 订阅 was acknowledged before it was created and who have no row.
* late replies: every message answered "success" has exactly one outbox row
  ``late:<community>:<message key>`` (its reply, written with its effects), and one answered
  with a passive reply has none (two replies); those rows against what the fake
  WeChat got. Then the effect rows above again for the messages answered "success"
  alone (a message run again by another process after its own died).
* waitlist offers: every place freed (a resident's cancellation, an offer declined)
  while someone waited gets exactly one offer row ``resident:waitlist:ENTRY:CAUSE``
  (missing also when, at the end, a session has a free place and someone waiting;
  duplicated also when an entry was offered twice or a row names no known cause);
  offer rows against what the fake WeChat got; every 确认 that took up an offer
  acknowledged → exactly one order, linked to its waitlist entry (the held place);
  and every session: booked ≤ capacity and booked = places of its open orders plus
  places held by offers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench import soak  # noqa: E402
from bench.soak import (  # noqa: E402
    CODE,
    SORRY,
    TOKEN,
    UNITS,
    Actor,
    Conversation,
    Database,
    Resident,
    Server,
    Soak,
    Unexpected,
    UnitWork,
    broadcast_midway,
    cli,
    free_port,
    reply_text,
    scrape,
    server_env,
)
from storage.order_status import OrderStatus  # noqa: E402
from tests.fake_wechat import FakeWeChat  # noqa: E402
from tests.ordering_catalog import ZONE, lecture_day  # noqa: E402
from tests.wechat_server import WeChatServer, sign  # noqa: E402

WECHAT_TIMEOUT = 5.0
"""WeChat waits this long for an answer before it retries."""
WECHAT_RETRIES = 3
"""Retries after the first attempt (then WeChat gives up)."""
RETRY_PAUSE = 1.0
"""Seconds before a retry after a refused connection or a 5xx (a timeout is retried at once)."""
STAFF_TIMEOUT = 15.0
STAFF_USER = "soakstaff"
STAFF_PASSWORD = "soak-staff-" + secrets.token_hex(8)
WAVE_NEED = "想参加义诊"
WAVE_TITLE = "大型义诊"
WAVE_UNIT = "clinic"
WAVE_CAPACITY = 2
WAVE_SESSIONS = 60
REDISPATCH_FROM = "property"
"""Orders of this unit's items may be re-dispatched A→B→A by staff."""

ACTIONS = {
    "接单": OrderStatus.ACCEPTED,
    "开始": OrderStatus.IN_SERVICE,
    "完成": OrderStatus.COMPLETED,
}


def wave_item() -> str:
    """大型义诊: many small sessions (2 places), so that a wave of residents confirming
    together fills one and the rest are told it is full."""
    lines = [
        "  - id: free-clinic",
        f"    title: {WAVE_TITLE}",
        f"    unit: {WAVE_UNIT}",
        "    category: 健康医疗",
        "    mode: 订单式",
        "    keywords: [义诊, 免费看病]",
        "    description: 医院专家来社区免费看病、量血压。",
        "    sessions:",
    ]
    for n in range(WAVE_SESSIONS):
        day, hour = lecture_day(3 + n // 8), 8 + n % 8
        lines.append(
            f'      - {{id: c{n}, start: "{day} {hour:02d}:00", capacity: {WAVE_CAPACITY}, '
            "location: 一楼大厅}"
        )
    return "\n".join(lines) + "\n"


SESSION_TIME = re.compile(r"\d+月\d+日（周.）\d\d:\d\d")
"""A session's time as the replies name it (handlers.texts.slot_label)."""


def session_time(starts_at: dt.datetime) -> str:
    local = starts_at.astimezone(ZONE)
    weekday = "一二三四五六日"[local.weekday()]
    return f"{local.month}月{local.day}日（周{weekday}）{local:%H:%M}"


OFFER_PREFIX = "好消息！您候补的"
"""How a waiting-list offer begins (handlers.texts.waitlist_offer)."""
LAPSED_PREFIX = "给您留的「"


def is_notification(text: str) -> bool:
    """What the service sends on its own (outbox, broadcast, waiting-list offers), as
    opposed to a late reply."""
    return text.startswith(("【", "您的订单 ", OFFER_PREFIX, LAPSED_PREFIX))


# --- what was sent, and what came back ---------------------------------------------------


@dataclass
class Sent:
    """One message (all its attempts) and what became of it."""

    kind: str
    openid: str
    content: str
    key: str
    tag: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    outcome: str = "lost"
    """reply, success (late), lost (WeChat gave up), refused (HTTP 4xx)."""
    reply: str | None = None
    """The reply: the passive one, or for a late one the customer-service message."""
    acked_at: float | None = None
    """time.time() when it was acknowledged."""

    @property
    def acknowledged(self) -> bool:
        return self.outcome in ("reply", "success")


class Reset(Actor):
    """A resident whose last exchange went wrong (WeChat gave up, or a reply the script
    could not follow) starts afresh with 取消; any reply will do."""

    kind = "reset"

    def message(self) -> tuple[str, dict[str, str]]:
        return soak.text("取消")

    def on_reply(self, reply: str) -> float | None:
        return None


class Resend(UnitWork):
    """A member's 接单/开始/完成: after a message WeChat gave up on, the member types
    the same command again (a new message); a reply that the order already is where
    the command would take it means the lost one did it."""

    resends = 0

    def on_reply(self, reply: str) -> float | None:
        word = self.WORDS[self.stage]
        label = ACTIONS[word].label
        if reply.startswith(f"订单 {self.code} 现在是“{label}”"):
            reply = f"已{word}：订单 {self.code}"  # done by the message WeChat gave up on
        return super().on_reply(reply)

    def on_lost(self) -> float | None:
        self.resends += 1
        return 2.0 if self.resends <= 3 else None


class Placeholder(Actor):
    """Holds a resident taken by a wave (not a step of the scheduler)."""

    kind = "wave"


# --- the traffic ---------------------------------------------------------------------------


class KillSoak(Soak):
    """bench/soak.py's population and scheduler; messages go through ``exchange``
    (retries, two processes, late replies) and everything is recorded for the count."""

    def __init__(
        self,
        servers: list[KillableServer],
        http: aiohttp.ClientSession,
        residents: list[Resident],
        rng: random.Random,
        fake: FakeWeChat,
        args: argparse.Namespace,
        db: asyncpg.Pool,
    ) -> None:
        super().__init__(servers[0].base_url, http, residents, {}, rng)
        self.servers = servers
        self.fake = fake
        self.args = args
        self.db = db
        self.records: list[Sent] = []
        self.attempt_errors: Counter[str] = Counter()
        self.dirty: set[str] = set()
        self.late_inbox: dict[str, asyncio.Queue[str]] = defaultdict(asyncio.Queue)
        self.late_strays = 0
        self.offer_inbox: dict[str, asyncio.Queue[str]] = defaultdict(asyncio.Queue)
        self.offer_strays = 0
        self.offers: Counter[str] = Counter()
        self._seen_sent = 0
        self.staff_steps: list[dict[str, Any]] = []
        self.staff: aiohttp.ClientSession | None = None
        self.csrf = ""
        self.redispatch_share = args.redispatch_share
        self.background: set[asyncio.Task[Any]] = set()
        self.notes = itertools.count(1)
        self.waves = Counter[str]()

    # --- one message, as WeChat delivers it ---

    async def exchange(
        self, openid: str, msg_type: str, fields: dict[str, str], kind: str, **tag: Any
    ) -> Sent:
        """Send one message until acknowledged (4 attempts at most); wait for a late
        reply when the answer was "success"."""
        if msg_type != "event":
            fields["MsgId"] = str(next(self.msg_ids))
        created = int(time.time())
        xml = WeChatServer.xml(openid, msg_type, created, **fields).encode()
        if msg_type == "event":
            key = f"evt:{openid}:{created}:{fields['Event']}"
        else:
            key = f"msg:{fields['MsgId']}"
        record = Sent(kind, openid, fields.get("Content", fields.get("Event", "")), key, tag)
        self.records.append(record)
        self.window.sent += 1
        inbox = self.late_inbox[openid]
        while not inbox.empty():  # late replies that came after their wait ended
            inbox.get_nowait()
            self.late_strays += 1
        for _ in range(1 + WECHAT_RETRIES):
            record.attempts += 1
            server = self.rng.choice(self.servers)
            try:
                status, body = await self.post_xml(server.base_url, xml)
            except TimeoutError:
                self.attempt_errors["timeout (5 s)"] += 1
                continue
            except (aiohttp.ClientError, OSError) as exc:
                self.attempt_errors[f"connection: {type(exc).__name__}"] += 1
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if status >= 500:
                self.attempt_errors[f"HTTP {status}"] += 1
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if status >= 400:
                record.outcome = "refused"
                self.record_error(f"HTTP {status}", body[:80])
                return record
            record.acked_at = time.time()
            if body in ("success", ""):
                record.outcome = "success"
                try:
                    record.reply = await asyncio.wait_for(inbox.get(), self.args.late_timeout)
                except TimeoutError:
                    self.record_error("late reply not received", f"{kind} {record.content[:20]}")
                return record
            record.outcome = "reply"
            record.reply = reply_text(body)
            return record
        self.record_error("WeChat gave up (4 attempts)", f"{kind} {record.content[:20]}")
        return record

    async def post_xml(self, base_url: str, xml: bytes) -> tuple[int, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
        query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp}
        query["nonce"] = nonce
        async with asyncio.timeout(WECHAT_TIMEOUT):
            async with self.http.post(
                f"{base_url}/wechat?{urllib.parse.urlencode(query)}",
                data=xml,
                headers={"Content-Type": "text/xml"},
            ) as response:
                return response.status, await response.text()

    async def say(self, openid: str, content: str) -> str:
        """Set-up messages (binding members, before any kill): counted like the rest
        (a late reply to one is a late reply like any other)."""
        record = await self.exchange(openid, "text", {"Content": content}, "setup")
        if record.reply is None:
            raise RuntimeError(f"{content!r} from {openid}: no reply ({record.outcome})")
        return record.reply

    async def route_late_replies(self) -> None:
        """Customer-service messages that are not notifications go to their person's
        inbox: the late replies the scripted people wait for."""
        while True:
            sent = self.fake.sent
            while self._seen_sent < len(sent):
                body = sent[self._seen_sent]
                self._seen_sent += 1
                if body.get("msgtype") != "text":
                    continue
                content = str((body.get("text") or {}).get("content", ""))
                if content.startswith(OFFER_PREFIX):
                    self.offer_inbox[str(body.get("touser"))].put_nowait(content)
                elif not is_notification(content):
                    self.late_inbox[str(body.get("touser"))].put_nowait(content)
            await asyncio.sleep(0.1)

    # --- the scheduler's steps ---

    async def fire(self, actor: Actor) -> None:
        next_in: float | None = None
        try:
            msg_type, fields = actor.message()
            kind, tag = actor.kind, {}
            if isinstance(actor, Conversation) and fields.get("Content") == "确认":
                kind = "confirm"
            elif isinstance(actor, UnitWork):
                kind, tag = "unit", {"code": actor.code, "word": actor.WORDS[actor.stage]}
            record = await self.exchange(actor.who.openid, msg_type, fields, kind, **tag)
            if record.reply is None:
                next_in = self.lost(actor)
                return
            if SORRY in record.reply:
                self.record_error("service apology", f"{actor.kind} {record.content[:20]}")
                self.dirty.add(actor.who.openid)
                return
            try:
                next_in = actor.on_reply(record.reply)
            except Unexpected as exc:
                self.record_error(f"unexpected reply ({actor.kind})", str(exc))
                self.dirty.add(actor.who.openid)
        finally:
            if next_in is None or not actor.holds:
                actor.who.holder = None
            if next_in is not None:
                self.schedule(actor, next_in)

    def lost(self, actor: Actor) -> float | None:
        """No reply to act on (WeChat gave up, or the late reply never came)."""
        if isinstance(actor, Resend):
            return actor.on_lost()
        self.dirty.add(actor.who.openid)
        return None

    def new_work(self) -> Actor | None:
        actor = super().new_work()
        if actor is not None and actor.who.openid in self.dirty:
            self.dirty.discard(actor.who.openid)
            return Reset(self, actor.who)
        return actor

    def order_placed(self, resident: Resident, code: str, title: str | None) -> None:
        self.counts["placed"] += 1
        self.orders[code] = resident
        unit = soak.ITEM_UNITS.get(title or "")
        if unit is None:
            raise Unexpected(f"order {code} of an unknown item {title!r}")
        member = self.rng.choice(self.members[unit])
        work = Resend(self, member, code, resident)
        if unit == REDISPATCH_FROM and self.rng.random() < self.redispatch_share:
            other = self.rng.choice([u for u in UNITS if u != unit])
            self.spawn(self.redispatch(code, unit, other, work))
        else:
            self.schedule(work, self.rng.uniform(*self.accept_after))

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # --- staff at the console ---

    async def staff_login(self) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, either port
        self.staff = aiohttp.ClientSession(
            cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=STAFF_TIMEOUT)
        )
        base = self.servers[0].base_url
        async with self.staff.post(
            f"{base}/login",
            data={"username": STAFF_USER, "password": STAFF_PASSWORD},
            allow_redirects=False,
        ) as response:
            if response.status != 302:
                raise RuntimeError(f"staff login: HTTP {response.status}")
        async with self.staff.get(f"{base}/console") as response:
            found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
        if found is None:
            raise RuntimeError("staff console: no CSRF token on /console")
        self.csrf = found[1]

    async def redispatch(self, code: str, home: str, other: str, work: Resend) -> None:
        """Staff move the order to another unit and back (A→B→A), then A's member works
        it. Each step is one POST with a note of its own; after an error the staff
        member looks (the order's events) before posting again."""
        await asyncio.sleep(self.rng.uniform(2, 8))
        for unit in (other, home):
            if not await self.dispatch(code, unit):
                return  # left where it is; nobody works it
            await asyncio.sleep(self.rng.uniform(2, 8))
        self.counts["redispatched"] += 1
        self.schedule(work, self.rng.uniform(*self.accept_after))

    async def dispatch(self, code: str, unit: str) -> bool:
        assert self.staff is not None
        note = f"压测改派{next(self.notes)}：派给{UNITS[unit]}"
        step: dict[str, Any] = {"code": code, "unit": unit, "note": note, "outcome": "lost"}
        self.staff_steps.append(step)
        data = {"csrf": self.csrf, "unit": unit, "note": note}
        for _ in range(5):
            server = self.rng.choice(self.servers)
            step["attempts"] = step.get("attempts", 0) + 1
            try:
                async with self.staff.post(
                    f"{server.base_url}/console/orders/{code}/dispatch",
                    data=data,
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.attempt_errors[f"staff: {type(exc).__name__}"] += 1
                status = 0
            if status == 302:
                step["outcome"] = "acknowledged"
                return True
            if 400 <= status < 500:
                step["outcome"] = f"refused ({status})"
                self.record_error(f"staff dispatch refused: HTTP {status}", code)
                return False
            if status >= 500:
                self.attempt_errors[f"staff: HTTP {status}"] += 1
            await asyncio.sleep(2)
            if await self.db.fetchval(
                "SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id "
                "WHERE o.code = $1 AND e.note = $2",
                code,
                note,
            ):
                step["outcome"] = "seen after an error"
                return True
        self.record_error("staff dispatch: gave up", code)
        return False

    # --- waves on the small sessions: 确认 together, 候补, 取消订单 ---

    async def waves_every(self, seconds: float, until: float) -> None:
        while self.loop.time() + seconds < until:
            await asyncio.sleep(seconds)
            people = [r for r in self.residents if r.holder is None and r.followed]
            people = [r for r in people if r.openid not in self.dirty]
            if len(people) < self.args.wave_size:
                continue
            chosen = self.rng.sample(people, self.args.wave_size)
            for resident in chosen:
                resident.holder = Placeholder(self, resident)
            self.spawn(self.wave(chosen))

    async def wave(self, residents: list[Resident]) -> None:
        self.waves["started"] += 1
        ready = await asyncio.gather(*(self.to_summary(r) for r in residents))
        at_summary = [r for r, ok in zip(residents, ready, strict=True) if ok]
        for resident in residents:
            if resident not in at_summary:
                self.dirty.add(resident.openid)
                resident.holder = None
        confirmed = await asyncio.gather(*(self.confirm(r) for r in at_summary))
        placed = [(r, code) for r, (code, _) in zip(at_summary, confirmed, strict=True) if code]
        waiting = [(r, when) for r, (_, when) in zip(at_summary, confirmed, strict=True) if when]
        for resident in at_summary:
            if all(resident is not r for r, _ in placed + waiting):
                resident.holder = None
        if not placed:
            for resident, _ in waiting:
                resident.holder = None
            return
        canceller, code = placed[0]
        await asyncio.sleep(self.rng.uniform(1, 4))
        record = await self.exchange(
            canceller.openid, "text", {"Content": f"取消订单 {code}"}, "cancel", code=code
        )
        if record.reply is None or "已经取消了" not in record.reply:
            self.record_error("cancel: unexpected reply", str(record.reply)[:60])
            self.dirty.add(canceller.openid)
        else:
            self.counts["cancelled"] += 1
        canceller.holder = None
        for resident, code in placed[1:]:
            resident.holder = None
            self.orders[code] = resident
            member = self.rng.choice(self.members[WAVE_UNIT])
            self.schedule(
                Resend(self, member, code, resident), self.rng.uniform(*self.accept_after)
            )
        try:
            await self.offers_of_wave(waiting)
        finally:
            for resident, _ in waiting:
                resident.holder = None

    # --- waiting-list offers: 要 (and the rest of the form), or 不要了 ---

    async def offers_of_wave(self, waiting: list[tuple[Resident, str]]) -> None:
        """Those of the wave on the waiting list wait for the freed place's offer (the
        one naming their session); who gets it takes it up (--accept-share) or hands
        it on with 不要了, and the next in line gets it. Over once someone took it,
        or after --offer-timeout without an offer."""
        settled = asyncio.Event()

        async def one(resident: Resident, when: str) -> None:
            inbox = self.offer_inbox[resident.openid]
            until = self.loop.time() + self.args.offer_timeout
            while True:
                left = until - self.loop.time()
                if settled.is_set() or left <= 0:
                    return
                getting = asyncio.ensure_future(inbox.get())
                stopping = asyncio.ensure_future(settled.wait())
                done, _ = await asyncio.wait(
                    (getting, stopping), timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                stopping.cancel()
                if getting not in done:
                    getting.cancel()
                    continue
                if when in getting.result():
                    break
                self.offer_strays += 1  # another session's offer (an earlier wave)
            self.offers["received"] += 1
            if self.rng.random() < self.args.accept_share:
                try:
                    await self.take_offer(resident)
                finally:
                    settled.set()
            else:
                await self.decline_offer(resident)

        await asyncio.gather(*(one(r, when) for r, when in waiting))

    async def take_offer(self, resident: Resident) -> None:
        """要, the remaining questions, 确认: an order with the held place."""
        talk = Conversation(self, resident, "要")
        content, kind = "要", "offer-take"
        for step in range(soak.MAX_STEPS):
            record = await self.exchange(
                resident.openid, "text", {"Content": content}, kind, offer=True
            )
            reply = record.reply
            if reply is None or SORRY in reply:
                self.dirty.add(resident.openid)
                return
            if step == 0 and "名额给您留着" not in reply:
                self.record_error("offer: 要 did not take the held place", reply[:60])
                self.dirty.add(resident.openid)
                return
            if kind == "confirm":
                placed = CODE.search(reply)
                if placed is None:
                    self.record_error("offer: unexpected reply to 确认", reply[:60])
                    self.dirty.add(resident.openid)
                    return
                self.offers["taken"] += 1
                self.counts["placed"] += 1
                self.orders[placed[1]] = resident
                member = self.rng.choice(self.members[WAVE_UNIT])
                self.schedule(
                    Resend(self, member, placed[1], resident),
                    self.rng.uniform(*self.accept_after),
                )
                return
            try:
                content = "1" if "几位" in reply else talk.answer(reply)
            except Unexpected as exc:
                self.record_error("unexpected reply (offer)", str(exc))
                self.dirty.add(resident.openid)
                return
            kind = "confirm" if content == "确认" else "offer-take"
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        self.dirty.add(resident.openid)

    async def decline_offer(self, resident: Resident) -> None:
        record = await self.exchange(resident.openid, "text", {"Content": "不要了"}, "decline")
        if record.reply is None or "让给下一位" not in record.reply:
            self.record_error("offer: unexpected reply to 不要了", str(record.reply)[:60])
            self.dirty.add(resident.openid)
        else:
            self.offers["declined"] += 1

    async def to_summary(self, resident: Resident) -> bool:
        """The conversation of bench/soak.py up to the summary (people: one)."""
        talk = Conversation(self, resident, WAVE_NEED)
        content = WAVE_NEED
        for _ in range(soak.MAX_STEPS):
            record = await self.exchange(resident.openid, "text", {"Content": content}, "wave")
            reply = record.reply
            if reply is None or SORRY in reply:
                return False
            if "请核对" in reply:
                return True
            try:
                content = "1" if "几位" in reply else talk.answer(reply)
            except Unexpected as exc:
                self.record_error("unexpected reply (wave)", str(exc))
                return False
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        return False

    async def confirm(self, resident: Resident) -> tuple[str | None, str | None]:
        """确认 (all of the wave at once); 候补 when told the session is full. The order
        placed, or the time of the session whose waiting list was joined."""
        record = await self.exchange(
            resident.openid, "text", {"Content": "确认"}, "confirm", wave=True
        )
        reply = record.reply
        if reply is None:
            self.dirty.add(resident.openid)
            return None, None
        placed = CODE.search(reply)
        if placed:
            self.counts["placed"] += 1
            self.waves["placed"] += 1
            return placed[1], None
        if "候补" not in reply:
            self.record_error("unexpected reply (wave 确认)", reply[:60])
            self.dirty.add(resident.openid)
            return None, None
        self.waves["full"] += 1
        await asyncio.sleep(self.rng.uniform(0.5, 2))
        inbox = self.offer_inbox[resident.openid]
        while not inbox.empty():  # offers of an earlier wave's session, never answered
            inbox.get_nowait()
            self.offer_strays += 1
        record = await self.exchange(resident.openid, "text", {"Content": "候补"}, "waitlist")
        when = SESSION_TIME.search(record.reply or "")
        if record.reply is None or "候补" not in record.reply or when is None:
            self.record_error("unexpected reply (候补)", str(record.reply)[:60])
            self.dirty.add(resident.openid)
            return None, None
        self.waves["waitlisted"] += 1
        return None, when[0]


# --- processes -------------------------------------------------------------------------------


class KillableServer(Server):
    def __init__(self, name: str, env: dict[str, str], workdir: Path, port: int) -> None:
        super().__init__({**env, "PORT": str(port)}, workdir, port, log_name=f"{name}.log")
        self.name = name
        self.kills = 0
        self.restarts: list[float] = []

    async def kill_and_restart(self, http: aiohttp.ClientSession) -> float:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        self.kills += 1
        took = await self.start(http)
        self.restarts.append(took)
        return took


async def killer(
    servers: list[KillableServer],
    http: aiohttp.ClientSession,
    every: float,
    until: float,
    rng: random.Random,
    t0: float,
) -> None:
    """SIGKILL a random server at t0 + every, t0 + 2·every … (before ``until``), and
    start it again at once; a kill due while the last one is still starting waits."""
    loop = asyncio.get_running_loop()
    for n in itertools.count(1):
        due = t0 + n * every
        if due >= until:
            return
        await asyncio.sleep(max(due - loop.time(), 0))
        victim = rng.choice(servers)
        pid, at = victim.pid, loop.time() - t0
        try:
            took = await victim.kill_and_restart(http)
        except RuntimeError as exc:
            print(f"    [{at:5.0f} s] {victim.name} did not come back: {exc}", flush=True)
            raise
        print(
            f"    [{at:5.0f} s] SIGKILL {victim.name} (pid {pid}); "
            f"ready again in {took:.1f} s (pid {victim.pid})",
            flush=True,
        )


# --- the count -------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    expected: int | str
    found: int | str = ""
    missing: int | str = ""
    duplicated: int | str = ""
    checked: bool = True
    """An "exactly once" line: missing or duplicated makes the run fail."""
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.checked and any(
            isinstance(v, int) and v > 0 for v in (self.missing, self.duplicated)
        )


def found_missing_dup(pairs: list[tuple[int, int]]) -> tuple[int, int, int]:
    """(expected, found) per thing → (found in all, missing, duplicated): a thing
    short of what it should have counts as missing, one beyond it as duplicated."""
    found = sum(p for _, p in pairs)
    missing = sum(max(e - p, 0) for e, p in pairs)
    duplicated = sum(max(p - e, 0) for e, p in pairs)
    return found, missing, duplicated


async def count(run: KillSoak, broadcast: dict[str, Any]) -> list[Row]:
    db = run.db
    rows: list[Row] = []
    records = run.records
    acked = [r for r in records if r.acknowledged]
    by_outcome = Counter(r.outcome for r in records)
    rows.append(Row("messages sent (distinct MsgIds / events)", len(records), checked=False))
    rows.append(Row("  HTTP attempts", sum(r.attempts for r in records), checked=False))
    rows.append(Row("  acknowledged with a reply", by_outcome["reply"], checked=False))
    rows.append(Row('  acknowledged with "success" (late)', by_outcome["success"], checked=False))
    rows.append(Row("  not acknowledged (WeChat gave up)", by_outcome["lost"], checked=False))
    if by_outcome["refused"]:
        rows.append(Row("  refused (HTTP 4xx)", by_outcome["refused"], checked=False))

    orders = {
        r["code"]: r
        for r in await db.fetch(
            "SELECT o.id, o.code, o.message_key, o.status, r.openid, u.key AS unit, "
            "COALESCE((o.answers->>'people')::int, 1) AS people, "
            "iu.key AS item_unit FROM orders o JOIN residents r ON r.id = o.resident_id "
            "JOIN units u ON u.id = o.unit_id JOIN items i ON i.id = o.item_id "
            "JOIN units iu ON iu.id = i.unit_id"
        )
    }
    by_key: dict[str, list[str]] = defaultdict(list)
    for order in orders.values():
        if order["message_key"]:
            by_key[order["message_key"]].append(order["code"])

    # 确认 → orders.
    pairs, wrong_code = [], 0
    deferred_pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    """Per kind of effect, (expected, found) of the messages answered "success"."""
    confirms = [r for r in acked if r.kind == "confirm"]
    for record in confirms:
        full = record.reply is not None and not CODE.search(record.reply) and "候补" in record.reply
        found = by_key.get(record.key, [])
        pairs.append((0 if full else 1, len(found)))
        if record.outcome == "success":
            deferred_pairs["确认 → order"].append(pairs[-1])
        said = CODE.search(record.reply or "")
        if said and found and said[1] not in found:
            wrong_code += 1
    found, missing, dup = found_missing_dup(pairs)
    row = Row(
        "确认 acknowledged → orders", sum(e for e, _ in pairs), found, missing, dup + wrong_code
    )
    full = sum(1 for e, _ in pairs if e == 0)
    row.notes.append(f"{len(confirms)} acknowledged, {full} of them told the session was full")
    if wrong_code:
        row.notes.append(f"{wrong_code} replies named another order than the one found")
    unacked = [r for r in records if r.kind == "confirm" and not r.acknowledged]
    placed_anyway = sum(1 for r in unacked if by_key.get(r.key))
    row.notes.append(
        f"{len(unacked)} 确认 not acknowledged: {placed_anyway} placed an order anyway "
        "(either is right)"
    )
    rows.append(row)

    events = await db.fetch(
        "SELECT e.id, o.code, e.actor, e.from_status, e.to_status, e.note "
        "FROM order_events e JOIN orders o ON o.id = e.order_id ORDER BY e.id"
    )
    per_status = Counter((e["code"], e["to_status"]) for e in events)

    # Unit commands → events.
    wanted: set[tuple[str, str]] = set()
    wanted_deferred: set[tuple[str, str]] = set()
    for record in acked:
        if record.kind != "unit":
            continue
        code, word = record.tag["code"], record.tag["word"]
        status = ACTIONS[word]
        reply = record.reply
        if (
            reply is None  # "success", and its late reply never came: it was acknowledged
            or reply.startswith(f"已{word}：订单 {code}")
            or reply.startswith(f"订单 {code} 现在是“{status.label}”")
        ):
            wanted.add((code, status.value))
            if record.outcome == "success":
                wanted_deferred.add((code, status.value))
    found, missing, dup = found_missing_dup([(1, per_status[w]) for w in sorted(wanted)])
    deferred_pairs["unit command → event"] += [(1, per_status[w]) for w in sorted(wanted_deferred)]
    rows.append(Row("unit commands acknowledged → order events", len(wanted), found, missing, dup))

    # Resident cancellations → events.
    cancels = {
        r.tag["code"]
        for r in acked
        if r.kind == "cancel" and (r.reply is None or "已经取消了" in r.reply)
    }
    pairs = [(1, per_status[(c, OrderStatus.CANCELLED.value)]) for c in sorted(cancels)]
    deferred_pairs["取消订单 → event"] += [
        (1, per_status[(r.tag["code"], OrderStatus.CANCELLED.value)])
        for r in acked
        if r.kind == "cancel" and r.outcome == "success" and r.tag["code"] in cancels
    ]
    found, missing, dup = found_missing_dup(pairs)
    rows.append(
        Row("resident cancellations acknowledged → events", len(cancels), found, missing, dup)
    )

    # Waitlist joins → entries, per resident and session (told by its time in the
    # reply: a resident drawn into two waves may join one session's list twice, and
    # is on it once).
    joins: set[tuple[str, str]] = set()
    joins_late: set[tuple[str, str]] = set()
    for record in acked:
        if record.kind != "waitlist" or not (record.reply is None or "排上" in record.reply):
            continue
        when = SESSION_TIME.search(record.reply or "")
        joins.add((record.openid, when[0] if when else record.key))
        if record.outcome == "success":
            joins_late.add((record.openid, when[0] if when else record.key))
    entries = Counter(
        (row["openid"], session_time(row["starts_at"]))
        for row in await db.fetch(
            "SELECT r.openid, s.starts_at FROM waitlist_entries w "
            "JOIN residents r ON r.id = w.resident_id JOIN item_sessions s ON s.id = w.session_id"
        )
    )
    found, missing, dup = found_missing_dup([(1, entries[j]) for j in sorted(joins)])
    deferred_pairs["候补 → entry"] += [(1, entries[j]) for j in sorted(joins_late)]
    row = Row("waitlist joins acknowledged → entries", len(joins), found, missing, dup)
    joined = sum(1 for r in acked if r.kind == "waitlist")
    row.notes.append(
        f"{joined} 候补 acknowledged, for {len(joins)} (resident, session) pairs; "
        f"{sum(entries.values())} waitlist entries in all"
    )
    rows.append(row)

    # Staff re-dispatches → events.
    notes = Counter(e["note"] for e in events if e["note"])
    made = [s for s in run.staff_steps if s["outcome"] in ("acknowledged", "seen after an error")]
    found, missing, dup = found_missing_dup([(1, notes[s["note"]]) for s in made])
    row = Row("staff re-dispatches (HTTP 302) → events", len(made), found, missing, dup)
    seen = sum(1 for s in made if s["outcome"] == "seen after an error")
    lost = [s for s in run.staff_steps if s not in made]
    row.notes.append(
        f"{seen} of them seen made after an error; {len(lost)} not made "
        f"({sum(1 for s in lost if notes[s['note']])} of those have an event anyway)"
    )
    rows.append(row)

    # Notifications promised by the events → outbox rows.
    outbox = await db.fetch("SELECT key, channel, target, payload, status FROM outbox")
    members: dict[str, int] = {
        r["key"]: r["n"]
        for r in await db.fetch(
            "SELECT u.key, count(m.id) AS n FROM units u LEFT JOIN unit_members m "
            "ON m.unit_id = u.id AND m.active GROUP BY u.key"
        )
    }
    keys = [r["key"] for r in outbox]
    promised: list[tuple[str, int]] = []
    for event in events:
        code, to = event["code"], event["to_status"]
        order = orders[code]
        if to == OrderStatus.DISPATCHED.value:
            # Placing dispatches to the item's unit; staff name the unit in the note.
            unit = re.search(r"派给(.+)$", event["note"] or "")
            target = order["item_unit"]
            if unit and event["actor"] != "system":
                target = next((k for k, name in UNITS.items() if name == unit[1]), target)
            promised.append((f"placed:{code}:{event['id']}:{target}:", max(members[target], 1)))
        elif (
            to in ("accepted", "in_service", "completed", "returned", "closed") and order["openid"]
        ):
            promised.append((f"resident:{to}:{code}:{event['id']}", 1))
        elif to == OrderStatus.CANCELLED.value and event["actor"] == "resident":
            promised.append((f"cancelled:{code}:{event['id']}:", max(members[order["unit"]], 1)))
    explained: set[str] = set()
    pairs = []
    for prefix, n in promised:
        matching = [
            k for k in keys if k == prefix or (prefix.endswith(":") and k.startswith(prefix))
        ]
        explained.update(matching)
        pairs.append((n, len(matching)))
    found, missing, dup = found_missing_dup(pairs)
    # Late replies and waiting-list offers are counted in rows of their own.
    own_rows = ("late:", "resident:waitlist:", "resident:waitlist-lapsed:")
    extra = [k for k in keys if k not in explained and not k.startswith(own_rows)]
    row = Row(
        "notifications promised by events → outbox rows",
        sum(n for _, n in promised),
        found,
        missing,
        dup + len(extra),
    )
    row.notes.append(
        f"{len(promised)} events that promise notifications; {len(outbox)} outbox rows"
    )
    if extra:
        row.notes.append(f"{len(extra)} rows no event explains, e.g. {extra[:3]}")
    rows.append(row)

    # Outbox rows → received by the fake WeChat.
    received = Counter(
        (str(b.get("touser")), str((b.get("text") or {}).get("content", "")))
        for b in run.fake.sent
        if b.get("msgtype") == "text"
    )
    wanted_msgs: Counter[tuple[str, str]] = Counter()
    statuses: Counter[str] = Counter()
    for row_ in outbox:
        payload = row_["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        if row_["channel"] == "wechat":
            to = payload.get("member")
        elif row_["channel"] == "resident":
            to = row_["target"]
        else:
            continue
        statuses[row_["status"]] += 1
        wanted_msgs[(str(to), str(payload.get("text", "")))] += 1
    found, missing, dup = found_missing_dup([(n, received[m]) for m, n in wanted_msgs.items()])
    row = Row(
        "outbox rows (WeChat) → received by fake WeChat",
        sum(wanted_msgs.values()),
        found,
        missing,
        dup,
    )
    row.notes.append(f"outbox statuses: {dict(sorted(statuses.items()))}")
    keys_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row_ in outbox:
        payload = _payload(row_)
        to = payload.get("member") if row_["channel"] == "wechat" else row_["target"]
        keys_of[(str(to), str(payload.get("text", "")))].append(f"{row_['key']} ({row_['status']})")
    short = [m for m, n in wanted_msgs.items() if received[m] != n]
    for m in short[:3]:
        row.notes.append(f"{m[0]}: {wanted_msgs[m]} rows, {received[m]} received: {keys_of[m]}")
    rows.append(row)

    # Broadcast deliveries → received.
    if broadcast.get("id") is None:
        row = Row("broadcast deliveries → received", "not created")
        row.missing = 1
        row.notes.append(str(broadcast.get("error", "the run ended before it")))
        rows.append(row)
    else:
        prefix = f"【{soak.BROADCAST_TITLE}】"
        got_broadcast: Counter[str] = Counter()
        for (to, text), n in received.items():
            if text.startswith(prefix):
                got_broadcast[to] += n
        deliveries = await db.fetch(
            "SELECT r.openid, d.status FROM broadcast_deliveries d "
            "JOIN broadcast_runs b ON b.id = d.run_id JOIN residents r ON r.id = d.resident_id "
            "WHERE b.broadcast_id = $1",
            broadcast["id"],
        )
        per_resident = Counter(d["openid"] for d in deliveries)
        found, missing, dup = found_missing_dup([(1, got_broadcast[o]) for o in per_resident])
        dup += sum(n for o, n in got_broadcast.items() if o not in per_resident)
        row = Row("broadcast deliveries → received", len(per_resident), found, missing, dup)
        row.notes.append(f"delivery statuses: {dict(Counter(d['status'] for d in deliveries))}")
        known: set[str] = broadcast.get("subscribers_known", set())
        without = known - set(per_resident)
        row.notes.append(
            f"{len(known)} residents' 订阅 acknowledged before it was created; "
            f"{len(without)} of them got no delivery row"
        )
        row.missing = int(row.missing) + len(without)
        rows.append(row)

    # Late replies: a message answered "success" gets its reply once, as the outbox
    # row late:<community>:<message key> (written with its effects), and WeChat delivers it once;
    # a message answered with a passive reply gets none (that would be two replies).
    late_rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row_ in outbox:
        if row_["key"].startswith("late:"):
            payload = row_["payload"]
            payload = json.loads(payload) if isinstance(payload, str) else payload
            # late:<community>:<message key> (one MsgId may reach two accounts)
            message_key = row_["key"][len("late:") :].split(":", 1)[1]
            late_rows[message_key].append((str(row_["target"]), str(payload.get("text", ""))))
    deferred = [r for r in acked if r.outcome == "success"]
    pairs = [(1, len(late_rows.get(r.key, []))) for r in deferred]
    found, missing, dup = found_missing_dup(pairs)
    answered_twice = [r for r in acked if r.outcome == "reply" and late_rows.get(r.key)]
    row = Row(
        'late replies: "success" → late:<key> outbox rows',
        len(deferred),
        found,
        missing,
        dup + len(answered_twice),
    )
    if answered_twice:
        row.notes.append(
            f"{len(answered_twice)} messages answered with a reply also have a late row, "
            f"e.g. {[r.key for r in answered_twice[:3]]}"
        )
    unacked_late = sum(1 for r in records if not r.acknowledged and late_rows.get(r.key))
    row.notes.append(
        f"{sum(map(len, late_rows.values()))} late rows in all; {unacked_late} for messages "
        "WeChat gave up on (either is right)"
    )
    rows.append(row)
    wanted_late = Counter(t for r in deferred for t in late_rows.get(r.key, []))
    found, missing, dup = found_missing_dup([(wanted_msgs[m], received[m]) for m in wanted_late])
    row = Row(
        "late reply rows → received by fake WeChat", sum(wanted_late.values()), found, missing, dup
    )
    row.notes.append(
        f"matched by (person, text) against every outbox row of that text; "
        f"{run.late_strays} came after the sender stopped waiting"
    )
    rows.append(row)

    # The effects of the deferred messages alone (a subset of the rows above).
    rows.append(deferred_effects(deferred_pairs))

    rows += await waitlist_offers(run, orders, events, outbox, received, wanted_msgs)
    return rows


def deferred_effects(pairs: dict[str, list[tuple[int, int]]]) -> Row:
    """The rows above, for the messages answered "success" only: the effect of a
    message run again by another process after its own died."""
    every = [p for kind in pairs.values() for p in kind]
    found, missing, dup = found_missing_dup(every)
    row = Row(
        'messages answered "success" → effect (of the above)',
        sum(e for e, _ in every),
        found,
        missing,
        dup,
    )
    row.notes.append(
        ", ".join(f"{kind} {sum(e for e, _ in p)}" for kind, p in pairs.items()) or "none"
    )
    return row


async def waitlist_offers(
    run: KillSoak,
    orders: dict[str, Any],
    events: list[Any],
    outbox: list[Any],
    received: Counter[tuple[str, str]],
    wanted_msgs: Counter[tuple[str, str]],
) -> list[Row]:
    """A freed place goes once to the first waiting; the offer reaches them once; 要
    (then 确认) makes one order with the held place; no session is over-booked."""
    db = run.db
    rows: list[Row] = []
    entries = {
        e["id"]: e
        for e in await db.fetch(
            "SELECT w.id, w.session_id, w.status, w.people, w.created_at, w.offered_at, "
            "w.order_id, r.openid FROM waitlist_entries w "
            "JOIN residents r ON r.id = w.resident_id"
        )
    }
    by_session: dict[int, list[Any]] = defaultdict(list)
    for entry in entries.values():
        by_session[entry["session_id"]].append(entry)

    # Offer rows (resident:waitlist:<entry>:<cause>), by the cause that freed the place.
    offer_rows: dict[str, list[Any]] = defaultdict(list)
    per_entry: Counter[int] = Counter()
    for row_ in outbox:
        found = re.fullmatch(r"resident:waitlist:(\d+):(\w+)", row_["key"])
        if found:
            offer_rows[found[2]].append(row_)
            per_entry[int(found[1])] += 1

    # The places freed: resident cancellations of session orders, and offers declined.
    order_by_id = {o["id"]: o for o in orders.values()}
    sessions_of = {
        r["id"]: r["session_id"]
        for r in await db.fetch("SELECT id, session_id FROM orders WHERE session_id IS NOT NULL")
    }
    causes: list[tuple[str, int, dt.datetime, int | None]] = []
    """(cause, session, when, the entry that declined)"""
    event_times = {
        e["id"]: e["created_at"]
        for e in await db.fetch("SELECT id, at AS created_at FROM order_events")
    }
    for event in events:
        order = orders[event["code"]]
        if event["to_status"] == OrderStatus.CANCELLED.value and order["id"] in sessions_of:
            sid = sessions_of[order["id"]]
            if sid in by_session:
                causes.append((f"e{event['id']}", sid, event_times[event["id"]], None))
    for entry in entries.values():
        if entry["status"] == "declined":
            causes.append(
                (f"d{entry['id']}", entry["session_id"], entry["offered_at"], entry["id"])
            )
    pairs, unexplained = [], 0
    for cause, sid, when, decliner in causes:
        offered = len(offer_rows.get(cause, []))
        # Somebody was waiting then if an entry created before is waiting still (an
        # entry leaves "waiting" only by an offer).
        waited = any(
            e["status"] == "waiting" and e["created_at"] < when and e["id"] != decliner
            for e in by_session[sid]
        )
        pairs.append((1 if offered or waited else 0, offered))
    known = {c for c, *_ in causes}
    unexplained = sum(len(v) for c, v in offer_rows.items() if c not in known)
    found, missing, dup = found_missing_dup(pairs)
    offered_twice = sum(n - 1 for n in per_entry.values() if n > 1)
    # And at the end no session has a free place while someone waits for it.
    sessions = {
        s["id"]: s
        for s in await db.fetch(
            "SELECT id, capacity, booked, starts_at FROM item_sessions WHERE capacity IS NOT NULL"
        )
    }
    free_while_waiting = [
        sid
        for sid, es in by_session.items()
        if any(e["status"] == "waiting" for e in es)
        and sessions[sid]["booked"] < sessions[sid]["capacity"]
    ]
    row = Row(
        "waitlist: places freed with someone waiting → offers",
        sum(e for e, _ in pairs),
        found,
        missing + len(free_while_waiting),
        dup + unexplained + offered_twice,
    )
    cancel_causes = sum(1 for c, *_ in causes if c.startswith("e"))
    row.notes.append(
        f"{cancel_causes} cancellations of sessions with a waiting list, "
        f"{len(causes) - cancel_causes} offers declined; "
        f"{sum(per_entry.values())} offer rows for {len(per_entry)} entries"
    )
    if free_while_waiting or unexplained or offered_twice:
        row.notes.append(
            f"{len(free_while_waiting)} sessions with a free place and someone waiting; "
            f"{unexplained} offer rows of no known cause; {offered_twice} entries offered twice"
        )
    rows.append(row)

    # Offer rows → received.
    wanted = Counter(
        (str(r["target"]), str(_payload(r).get("text", "")))
        for rs in offer_rows.values()
        for r in rs
    )
    found, missing, dup = found_missing_dup([(wanted_msgs[m], received[m]) for m in wanted])
    row = Row(
        "waitlist offer rows → received by fake WeChat", sum(wanted.values()), found, missing, dup
    )
    row.notes.append(
        f"the residents waiting got {run.offers['received']} of their session's offers, took up "
        f"{run.offers['taken']}, declined {run.offers['declined']}; "
        f"{run.offer_strays} offers came to nobody waiting for them"
    )
    rows.append(row)

    # Offers taken up: 要 … 确认 → one order, placed with the held place.
    linked = {e["order_id"]: e for e in entries.values() if e["order_id"] is not None}
    takes = [
        r for r in run.records if r.acknowledged and r.kind == "confirm" and r.tag.get("offer")
    ]
    pairs, unheld = [], 0
    by_key: dict[str, list[Any]] = defaultdict(list)
    for order in orders.values():
        if order["message_key"]:
            by_key[order["message_key"]].append(order)
    for record in takes:
        placed = by_key.get(record.key, [])
        with_hold = [o for o in placed if o["id"] in linked]
        unheld += len(placed) - len(with_hold)
        pairs.append((1, len(placed)))
    found, missing, dup = found_missing_dup(pairs)
    row = Row(
        "offers taken up (要 … 确认) → orders with the held place",
        len(takes),
        found,
        missing + unheld,
        dup,
    )
    if unheld:
        row.notes.append(f"{unheld} orders placed without the held place (not linked to an entry)")
    declines = [r for r in run.records if r.acknowledged and r.kind == "decline"]
    declined_ok = sum(1 for r in declines if r.reply is None or "让给下一位" in r.reply)
    row.notes.append(
        f"{declined_ok} 不要了 acknowledged; entries: "
        f"{dict(Counter(e['status'] for e in entries.values()))}"
    )
    rows.append(row)

    # Sessions: booked never beyond capacity, and booked = places of the open orders
    # plus places held by offers.
    holding: Counter[int] = Counter()
    for order in order_by_id.values():
        sid = sessions_of.get(order["id"])
        if sid is not None and order["status"] not in ("cancelled", "closed"):
            holding[sid] += order["people"]
    for entry in entries.values():
        if entry["status"] == "offered":
            holding[entry["session_id"]] += entry["people"]
    used = [sid for sid, s in sessions.items() if s["booked"] or holding[sid]]
    over = [sid for sid in used if sessions[sid]["booked"] > sessions[sid]["capacity"]]
    leaked = [sid for sid in used if sessions[sid]["booked"] > holding[sid]]
    short = [sid for sid in used if sessions[sid]["booked"] < holding[sid]]
    row = Row(
        "sessions: booked ≤ capacity, = open orders + holds",
        len(used),
        len(used) - len(set(over + leaked + short)),
        len(short),
        len(set(over + leaked)),
    )
    row.notes.append(
        f"over capacity {len(over)}; booked beyond orders and holds {len(leaked)}; "
        f"orders and holds beyond booked {len(short)}"
    )
    for sid in sorted(set(over + leaked + short))[:3]:
        row.notes.append(
            f"session {sid}: capacity {sessions[sid]['capacity']}, booked "
            f"{sessions[sid]['booked']}, open orders + holds {holding[sid]}"
        )
    rows.append(row)
    return rows


def _payload(row: Any) -> dict[str, Any]:
    payload = row["payload"]
    return json.loads(payload) if isinstance(payload, str) else dict(payload)


def print_table(rows: list[Row]) -> None:
    width = max(len(r.what) for r in rows) + 2
    print(f"{'':<{width}}{'expected':>9} {'found':>7} {'missing':>8} {'dup':>6}")
    for row in rows:
        mark = "  FAIL" if row.failed else ""
        print(
            f"{row.what:<{width}}{row.expected!s:>9} {row.found!s:>7} {row.missing!s:>8} "
            f"{row.duplicated!s:>6}{mark}"
        )
        for note in row.notes:
            print(f"{'':<4}{note}")


# --- the run ---------------------------------------------------------------------------------


async def run_soak(args: argparse.Namespace, workdir: Path) -> int:
    rng = random.Random(args.seed)
    database = Database(args.database_url, workdir, prefix="killsoak")
    catalog = workdir / "catalog.yaml"
    catalog.write_text(soak.catalog_yaml(wave_item()), encoding="utf-8")
    residents, fake = soak.population(args, rng, prefix="o_kill_resident")

    servers: list[KillableServer] = []
    pool: asyncpg.Pool | None = None
    run: KillSoak | None = None
    await database.create()
    try:
        connector = aiohttp.TCPConnector(limit=soak.MAX_IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as http:
            await fake.start()
            env = server_env(database.url, catalog, 8080, fake.base_url)  # PORT: each its own
            if args.reply_deadline is not None:
                env["REPLY_DEADLINE"] = str(args.reply_deadline)
            for name in ("A", "B"):
                server = KillableServer(name, env, workdir, free_port())
                servers.append(server)
            print(f"database: {database.describe()}")
            print(
                f"servers:  2 × {sys.executable} -m bot serve (WeChat API: fake at {fake.base_url})"
            )
            for server in servers:  # one after the other: migrations, catalog import
                took = await server.start(http)
                print(
                    f"          {server.name} {server.base_url} ready in {took:.1f} s, "
                    f"pid {server.pid}"
                )
            dsn = make_url(database.url).set(drivername="postgresql")
            pool = await asyncpg.create_pool(
                dsn.render_as_string(hide_password=False), min_size=1, max_size=4
            )
            run = KillSoak(servers, http, residents, rng, fake, args, pool)
            routing = asyncio.create_task(run.route_late_replies())
            run.members = await soak.bind_members(run, env, workdir, args.members_per_unit)
            await cli(
                env,
                workdir,
                "users",
                "create",
                STAFF_USER,
                "--role",
                "staff",
                "--password-stdin",
                stdin=STAFF_PASSWORD + "\n",
            )
            await run.staff_login()
            print(
                f"set-up:   {sum(len(m) for m in run.members.values())} unit members bound "
                "by chat; staff logged in to the console",
                flush=True,
            )
            try:
                return await traffic(args, run, servers, http, env, workdir)
            finally:
                routing.cancel()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if run is not None and run.staff is not None:
            await run.staff.close()
        if pool is not None:
            await pool.close()
        for server in servers:
            print(f"server {server.name} {await server.stop()}")
        await fake.stop()
        if args.keep:
            print(f"kept: {workdir}, database {database.created}")
        else:
            await database.drop()


async def traffic(
    args: argparse.Namespace,
    run: KillSoak,
    servers: list[KillableServer],
    http: aiohttp.ClientSession,
    env: dict[str, str],
    workdir: Path,
) -> int:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    until = t0 + args.duration
    print(
        f"traffic:  {args.rate:g} msg/s for {args.duration:g} s, {len(run.residents)} residents; "
        f"SIGKILL every {args.kill_every:g} s; a wave of {args.wave_size} every "
        f"{args.wave_every:g} s; broadcast at {args.broadcast_at:g} s",
        flush=True,
    )
    broadcast: dict[str, Any] = {}
    killing = asyncio.create_task(killer(servers, http, args.kill_every, until, run.rng, t0))
    waving = asyncio.create_task(run.waves_every(args.wave_every, until))
    announcing = asyncio.create_task(
        broadcast_midway(args.broadcast_at, env, workdir, run, broadcast)
    )
    try:
        await run.run(args.duration, args.rate)
    finally:
        waving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waving
    await killing  # the last kill's restart
    with contextlib.suppress(asyncio.CancelledError):
        await announcing
    print(
        f"    [{loop.time() - t0:5.0f} s] traffic over; waiting for the conversations in flight",
        flush=True,
    )
    patience = (WECHAT_RETRIES + 1) * WECHAT_TIMEOUT + args.late_timeout + 30
    await run.finish(patience)
    while run.background:
        await asyncio.wait(set(run.background), timeout=patience)
        await run.finish(patience)
    print(
        f"    [{loop.time() - t0:5.0f} s] draining (no kills): outbox, broadcast, leases",
        flush=True,
    )
    began = loop.time()
    quiet_since: float | None = None
    while loop.time() - began < args.drain_timeout:
        metrics = await scrape(http, servers[0].base_url)
        busy = sum(
            soak.metric(metrics, "om_outbox", status=s) for s in ("pending", "sending")
        ) + sum(
            soak.metric(metrics, "om_broadcast_deliveries", status=s)
            for s in ("pending", "sending")
        )
        if metrics and busy == 0:
            quiet_since = quiet_since or loop.time()
            if loop.time() - quiet_since >= 5:
                break
        else:
            quiet_since = None
        await asyncio.sleep(2)
    print(f"    [{loop.time() - t0:5.0f} s] drained in {loop.time() - began:.0f} s", flush=True)

    rows = await count(run, broadcast)
    kills = sum(s.kills for s in servers)
    restarts = [t for s in servers for t in s.restarts]
    print()
    print(
        f"kills: {kills} ("
        + ", ".join(f"{s.name} {s.kills}" for s in servers)
        + ")"
        + (f"; back in {min(restarts):.1f}–{max(restarts):.1f} s" if restarts else "")
    )
    print(
        f"traffic: {run.counts['placed']} orders placed by chat, "
        f"{run.counts['accepted']} accepted, {run.counts['completed']} completed, "
        f"{run.counts['redispatched']} re-dispatched A→B→A; "
        f"waves {dict(run.waves)}"
    )
    if run.attempt_errors:
        print(
            "attempts that failed: "
            + ", ".join(f"{k} {n}" for k, n in run.attempt_errors.most_common())
        )
    if run.all_errors:
        print("traffic errors: " + ", ".join(f"{k} {n}" for k, n in run.all_errors.most_common()))
        for sample in run.error_samples[:8]:
            print(f"    e.g. {sample}")
    log_errors = [
        r for s in servers for r in s.log_records() if r.get("level") in ("ERROR", "CRITICAL")
    ]
    print(f"server logs: {len(log_errors)} ERROR lines")
    for record in log_errors[:5]:
        print(f"    {str(record.get('msg'))[:160]}")
    print()
    print_table(rows)
    failed = [r.what.strip() for r in rows if r.failed]
    print()
    if failed:
        print("FAIL: not exactly once: " + "; ".join(failed))
        return 1
    print("PASS: every acknowledged message's effect and every promised notification exactly once")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Two serve processes, one SIGKILLed every few seconds: effects exactly once?"
    )
    parser.add_argument("--duration", type=float, default=600, help="Seconds of traffic.")
    parser.add_argument("--kill-every", type=float, default=20, help="Seconds between SIGKILLs.")
    parser.add_argument("--rate", type=float, default=10, help="Messages per second.")
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server to create the run's database on.",
    )
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--members-per-unit", type=int, default=2)
    parser.add_argument("--subscribe-share", type=float, default=0.5)
    parser.add_argument("--redispatch-share", type=float, default=0.3, help="Of property orders.")
    parser.add_argument("--wave-every", type=float, default=30)
    parser.add_argument("--wave-size", type=int, default=4)
    parser.add_argument(
        "--accept-share", type=float, default=0.7, help="Of offers: taken up (else 不要了)."
    )
    parser.add_argument(
        "--offer-timeout",
        type=float,
        default=60,
        help="Seconds a wave's waiting residents wait for an offer.",
    )
    parser.add_argument("--broadcast-at", type=float, default=None, help="Default: half-way.")
    parser.add_argument(
        "--late-timeout",
        type=float,
        default=90,
        help="Seconds to wait for a late reply (a killed process's: DEFERRED_MESSAGE_LEASE, 60 s).",
    )
    parser.add_argument(
        "--reply-deadline", type=float, default=None, help="REPLY_DEADLINE of the servers."
    )
    parser.add_argument("--drain-timeout", type=float, default=240)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the temp dir and the database.")
    args = parser.parse_args(argv)
    if make_url(args.database_url).drivername != "postgresql+asyncpg":
        parser.error("--database-url: postgresql+asyncpg://… (two processes need PostgreSQL)")
    if args.broadcast_at is None:
        args.broadcast_at = args.duration / 2
    if args.seed is None:
        args.seed = secrets.randbelow(10**6)  # printed, so that a run can be repeated
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="killsoak-"))
    print(
        f"CPUs: {os.cpu_count()}   Python {sys.version.split()[0]}   seed {args.seed}   "
        f"workdir {workdir}"
    )
    try:
        return asyncio.run(run_soak(args, workdir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
