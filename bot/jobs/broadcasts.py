"""Sending broadcasts (safety campaigns): starting runs when they are due, planning
how each follower is reached, and sending at WeChat's pace.

**The channel plan.** When a run starts, every follower it is for gets a channel
(``storage.repositories.broadcasts``): WeChat's mass send (群发) while their mass
messages this calendar month are fewer than ``MASS_QUOTA`` (4 for a service
account); else a customer-service message if they wrote in the last 48 hours; else
none (they are counted as not reachable by the account, for the group posts and the
door-to-door visits). Nobody gets a template message: since 2023 those are for
service notices, not publicity.

**Mass sends** go in batches of up to 10,000 openids, each batch one call with a
``client_msg_id`` fixed when the run was planned. ``pending → sending → submitted``.
A call is repeatable: WeChat answers a second call with the same clientmsgid with
45065 and the first call's msg_id, sending nothing. So a batch whose answer was lost
(timeout, 5xx), or whose process was killed mid-call (its ``sending`` lease runs
out), is simply called again, and recorded once. Only a batch that could not be
settled within a day (WeChat keeps clientmsgids for 24 hours) is given up as
``unknown`` rather than risk a second copy. Calls are at most one a second per
account (WeChat allows 60 a minute); 45009 pauses the account's calls for a
minute, 45066 (repeated too soon) retries the batch after a minute. WeChat's
``MASSSENDJOBFINISH`` event later reports each job's counts
(``handlers.campaign_events``).

**Customer-service messages** go one at a time, ``pending → sending → sent | failed
| skipped | unknown``, each step committed. ``unknown`` means the message was sent
and no clear answer came back, or the process was killed while it was ``sending``:
it probably arrived and is never sent again (that API has no idempotency key; the
client's sends are :attr:`~bot.wechat.api.SendPolicy.AT_MOST_ONCE`). A follower
whose window closed before their turn is skipped. -1, unreachable WeChat and a
missing token are retried with back-off (10 s doubling up to 10 minutes); an HTTP
4xx from a gateway the same way, but after :data:`MAX_ATTEMPTS` attempts marked
failed; 45009 slows the account down; 43004 marks the resident unfollowed. In quiet
hours nothing is sent (deliveries wait, they are not dropped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.jobs import schedule_words
from bot.jobs.backoff import backoff
from bot.jobs.lease import Lease
from bot.orders.effects import Policy
from bot.tenants import Account, Accounts, UnknownCommunity
from bot.wechat.customer_service import MassSender
from bot.wechat.errors import (
    NoMassQuota,
    NotFollowing,
    OutcomeUnknown,
    RateLimited,
    Refused,
    RepeatTooSoon,
    WeChatError,
    WeChatUnavailable,
    WindowClosed,
)
from catalog.model import Catalog
from storage import models
from storage.batch import BatchDatabase
from storage.repositories import broadcasts as repo
from storage.repositories.broadcasts import Plan, Quota
from storage.repositories.residents import set_following

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(hours=48)
IN_FLIGHT_LEASE = dt.timedelta(seconds=60)
LATE_RUN_LIMIT = dt.timedelta(days=1)
"""An occurrence missed by more than this (the service was down) is not sent late."""

MAX_ATTEMPTS = 8
"""Attempts of a delivery refused by whatever answered (:class:`Refused`) before it is
marked failed."""
RETRY_FIRST = dt.timedelta(seconds=10)
RETRY_CAP = dt.timedelta(minutes=10)

TEXT_LIMIT = 600
"""Characters: a customer-service text is limited to 2,048 bytes (≈ 680 Chinese
characters); a margin for the title line."""
TITLE_LIMIT = 40

MASS_QUOTA = 4
"""Mass messages a follower of a service account receives a calendar month."""
MASS_BATCH_LIMIT = 10_000
"""Openids one mass-send call may carry."""
MASS_CALL_INTERVAL = 1.0
"""Seconds between two mass-send calls of one account (WeChat allows 60 a minute)."""
RATE_PAUSE = dt.timedelta(seconds=60)
"""How long an account sends nothing after WeChat's 45009 on a mass send: its limit
is per minute."""
CLIENT_MSG_ID_KEPT = dt.timedelta(hours=23)
"""WeChat recognises a repeated clientmsgid for 24 hours; an hour's margin."""
NO_TEMPLATE = "outside 48-hour window, no template configured"
"""The reason of deliveries from before channel plans, shown for old broadcasts."""
WINDOW_PASSED = "outside the 48-hour window"
"""A customer-service delivery whose follower's window closed before their turn."""
UNFOLLOWED = "unfollowed (43004)"
NO_CLEAR_ANSWER = "sent, no clear answer from WeChat"
"""The reason of an ``unknown`` delivery whose send timed out or failed mid-way; the
detail follows in parentheses."""
UNKNOWN_MEANS = "probably delivered; never resent, so nobody gets the notice twice"
"""What ``unknown`` means, for operators (``order-menu broadcast status``)."""
UNKNOWN_MEANS_ZH = "发送后微信没有明确答复，很可能已送达；为免居民重复收到，不会重发"
"""The same, for staff on the console's broadcast page."""
GAVE_UP = "not taken by WeChat"
"""The reason of a delivery failed after :data:`MAX_ATTEMPTS`; the count and the last
error follow."""
EARLIEST_YEAR, LATEST_YEAR = 2000, 2099
"""Dates a broadcast may name. Anything else is a typo (0202 for 2020), and a
schedule from the year 1 would have the sender walk through two thousand years of
occurrences; datetime cannot even convert the year 1 to UTC."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a broadcast, said for both audiences: ``field`` and
    ``english`` name the option and value for the CLI; ``chinese`` says it for staff
    on the console, without option names."""

    field: str
    english: str
    chinese: str

    def __str__(self) -> str:
        return f"{self.field}: {self.english}"


class BroadcastProblem(ValueError):
    """A broadcast cannot be scheduled. ``str()`` lists every problem, ``;``-separated,
    each naming its field and value in English (the CLI prints them as its options);
    :attr:`for_staff` says the same in Chinese for the console's form."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems

    @property
    def for_staff(self) -> str:
        return "".join(p.chinese for p in self.problems)


def check_lengths(title: str, text: str) -> list[Problem]:
    problems = []
    if not title.strip():
        problems.append(Problem("title", "must not be empty", "请填写标题。"))
    if len(title) > TITLE_LIMIT:
        problems.append(
            Problem(
                "title",
                f"{len(title)} characters, at most {TITLE_LIMIT}",
                f"标题有 {len(title)} 个字，最多 {TITLE_LIMIT} 个字。",
            )
        )
    if not text.strip():
        problems.append(Problem("text", "must not be empty", "请填写内容。"))
    if len(text) > TEXT_LIMIT:
        problems.append(
            Problem(
                "text",
                f"{len(text)} characters, at most {TEXT_LIMIT} (WeChat's limit)",
                f"内容有 {len(text)} 个字，最多 {TEXT_LIMIT} 个字（微信的限制）。",
            )
        )
    return problems


def cron_trigger(cron: str, zone: ZoneInfo) -> CronTrigger:
    """A crontab line (minute hour day month weekday) in the community's time zone."""
    return CronTrigger.from_crontab(cron, timezone=zone)


def next_due(
    broadcast: models.Broadcast, zone: ZoneInfo, after: dt.datetime | None
) -> dt.datetime | None:
    """The first occurrence strictly after ``after`` (None: the first ever)."""
    if broadcast.send_at is not None:
        return broadcast.send_at if after is None else None
    if broadcast.cron is None:
        return None
    trigger = cron_trigger(broadcast.cron, zone)
    start = broadcast.active_from or broadcast.created_at
    floor = max(after + dt.timedelta(seconds=1), start) if after else start
    found = trigger.get_next_fire_time(None, floor.astimezone(zone))
    if found is None:
        return None
    fire: dt.datetime = found.astimezone(dt.UTC)
    if broadcast.active_until is not None and fire > broadcast.active_until:
        return None
    return fire


class BroadcastSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: Accounts,
        db: BatchDatabase,
        policy: Policy,
        clock: Clock,
        *,
        rate: float = 20.0,
        budget: float = 1.0,
        lease: dt.timedelta = IN_FLIGHT_LEASE,
        max_attempts: int = MAX_ATTEMPTS,
        mass_quota: int = MASS_QUOTA,
        batch_size: int = MASS_BATCH_LIMIT,
        mass_interval: float = MASS_CALL_INTERVAL,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._accounts = accounts
        self._db = db
        self._policy = policy
        self._clock = clock
        self._rate = rate
        self._budget = budget
        """Seconds one poll may spend sending before it yields to the next."""
        self._slow_until: dict[str, dt.datetime] = {}
        """Per community: WeChat's rate limit (45009) is per official account."""
        self._lease = Lease(lease)
        """A delivery left ``sending`` this long was abandoned by its process (it
        died); a live sender renews it while WeChat takes its time."""
        self._max_attempts = max_attempts
        self._mass_quota = mass_quota
        self._batch_size = batch_size
        self._mass_interval = mass_interval
        self._next_mass_call: dict[str, float] = {}
        """Per community: the loop time before which its account makes no mass call."""

    async def run_once(self) -> int:
        """Start due runs, settle abandoned deliveries, send for up to ``budget`` s:
        the mass-send batches that are due, then customer-service messages."""
        now = self._clock.now()
        await self.start_due_runs(now)
        async with self._sessionmaker.begin() as session:
            await repo.settle_in_flight(session, older_than=now - self._lease.length)
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + self._budget
        sent = await self.send_batches(stop_at)
        while loop.time() < stop_at:
            began = loop.time()
            sendable = self._sendable(self._clock.now())
            if not sendable or not await self.send_one(sendable):
                break
            sent += 1
            await asyncio.sleep(max(0.0, 1.0 / self._rate - (loop.time() - began)))
        async with self._sessionmaker.begin() as session:
            await repo.close_finished_runs(session)
        return sent

    def _sendable(self, now: dt.datetime) -> list[str]:
        """Communities whose residents may be messaged now: not in their quiet hours,
        and not told by WeChat to slow down."""
        return [
            account.id
            for account in self._accounts
            if not self._policy.worktime(account.catalog.current).in_quiet_hours(now)
            and not now < self._slow_until.get(account.id, now)
        ]

    async def start_due_runs(self, now: dt.datetime) -> None:
        async with self._sessionmaker.begin() as session:
            scheduled = list(
                await session.scalars(
                    select(models.Broadcast).where(models.Broadcast.status == "scheduled")
                )
            )
            for broadcast in scheduled:
                try:
                    catalog = self._accounts[broadcast.community_id].catalog.current
                except UnknownCommunity:
                    continue  # another deployment's community
                zone = ZoneInfo(catalog.document.community.timezone)
                quota = self.quota(zone, now)
                last = await repo.last_run_due(session, broadcast.id)
                due = next_due(broadcast, zone, last)
                latest = None
                while due is not None and due <= now:  # the newest occurrence that is due
                    latest, due = due, next_due(broadcast, zone, due)
                if latest is not None and now - latest <= LATE_RUN_LIMIT:
                    run = await repo.start_run(session, broadcast, latest, quota, self._batch_size)
                    if run is not None:
                        log.info("broadcast %d: run for %s started", broadcast.id, latest)
                elif latest is not None:
                    log.warning(
                        "broadcast %d: occurrence %s missed by over a day", broadcast.id, latest
                    )
                if due is None and (latest is not None or last is not None):
                    broadcast.status = "done"  # no occurrence left

    def quota(self, zone: ZoneInfo, now: dt.datetime) -> Quota:
        """WeChat's rules as they stand at ``now`` in a community's time zone."""
        return mass_quota(zone, now, self._mass_quota)

    async def send_batches(self, stop_at: float) -> int:
        """Call mass send for due batches until ``stop_at`` (loop time), each account
        at most once every ``mass_interval`` seconds. Returns the batches WeChat took."""
        loop = asyncio.get_running_loop()
        taken = 0
        while loop.time() < stop_at:
            now = self._clock.now()
            sendable = self._sendable(now)
            if not sendable:
                return taken
            stale = now - self._lease.length
            claim = partial(repo.claim_batch, now=now, stale_before=stale, communities=sendable)
            claimed = await self._db.run(claim)
            if claimed is None:
                return taken
            # Held (``sending``, well within its lease) while its account waits its turn.
            wait = self._next_mass_call.get(claimed.community_id, 0.0) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_mass_call[claimed.community_id] = loop.time() + self._mass_interval
            taken += await self.send_batch(claimed)
        return taken

    async def send_batch(self, claimed: repo.ClaimedBatch) -> int:
        """One mass-send call for a claimed batch, and its outcome recorded; 1 if
        WeChat took it."""
        now = self._clock.now()
        account = self._accounts[claimed.community_id]
        sender = account.customer_service
        stale = (
            claimed.first_sent_at is not None and claimed.first_sent_at < now - CLIENT_MSG_ID_KEPT
        )
        if stale:
            # WeChat no longer knows this clientmsgid: a call now could send it twice.
            await self._db.run(
                lambda c: repo.batch_not_taken(c, claimed.id, "unknown", error=STALE_BATCH)
            )
            log.warning("mass batch %s: %s", claimed.client_msg_id, STALE_BATCH)
            return 0
        if not isinstance(sender, MassSender) or len(claimed.openids) < 2:
            reason = NO_MASS_SEND if len(claimed.openids) >= 2 else TOO_FEW
            await self._db.run(
                lambda c: repo.batch_not_taken(c, claimed.id, "failed", error=reason)
            )
            return 0
        text = campaign_text(account, claimed.title, claimed.text, claimed.topic)

        async def renew() -> None:
            await self._db.run(lambda c: repo.renew_batch(c, claimed.id, now=self._clock.now()))

        status, error, retry_at, counted = "pending", "", None, True
        # WeChat clearly did not take the call: the 24 hours a repeat is safe for do
        # not start (None where it may have taken it).
        refused: tuple[dt.datetime | None] | None = (claimed.first_sent_at,)
        try:
            async with self._lease.kept(renew, f"mass batch {claimed.client_msg_id}"):
                accepted = await sender.mass_send(claimed.openids, text, claimed.client_msg_id)
        except RateLimited:
            error, counted = "rate limited (45009)", False
            retry_at = now + RATE_PAUSE
            self._slow_until[claimed.community_id] = retry_at
            log.warning(
                "mass send: WeChat rate limit (45009) for %s; pausing its sends for %s",
                claimed.community_id,
                RATE_PAUSE,
            )
        except RepeatTooSoon:  # an earlier call with this clientmsgid was made
            error, retry_at = "repeated too soon (45066)", now + dt.timedelta(seconds=61)
            refused = None
        except NoMassQuota:
            error, retry_at = "no mass-send quota left (45028)", now + dt.timedelta(hours=1)
        except (WeChatUnavailable, OutcomeUnknown) as exc:
            # Not taken, or taken with the answer lost: either way calling again with
            # the same clientmsgid sends nothing twice. A gateway refusing every call
            # is given up after MAX_ATTEMPTS, like a customer-service delivery.
            error = f"WeChat unavailable ({exc.errmsg})"
            if isinstance(exc, OutcomeUnknown):
                refused = None
            if isinstance(exc, Refused) and claimed.attempts >= self._max_attempts:
                status, error = "failed", f"{GAVE_UP} after {claimed.attempts} attempts"
            else:
                first, cap = RETRY_FIRST.total_seconds(), RETRY_CAP.total_seconds()
                retry_at = now + dt.timedelta(
                    seconds=backoff(claimed.attempts, first=first, cap=cap)
                )
        except WeChatError as exc:
            status, error = "failed", f"errcode {exc.errcode}"
        except Exception as exc:  # a bug or the database: retried, the call is repeatable
            log.exception("mass batch %s failed", claimed.client_msg_id)
            error, retry_at = type(exc).__name__, now + dt.timedelta(seconds=60)
            refused = None  # it may have gone out before the failure
        else:
            recorded = await self._db.run(
                lambda c: repo.batch_taken(c, claimed.id, accepted.msg_id, accepted.msg_data_id)
            )
            log.info(
                "mass batch %s: %d followers, msg_id %s%s%s",
                claimed.client_msg_id,
                len(claimed.openids),
                accepted.msg_id,
                " (a repeat WeChat had taken)" if accepted.repeated else "",
                "" if recorded else "; already recorded by another process",
            )
            return 1
        if status != "pending":
            log.warning("mass batch %s: %s", claimed.client_msg_id, error)
        await self._db.run(
            lambda c: repo.batch_not_taken(
                c,
                claimed.id,
                status,
                error=error,
                retry_at=retry_at,
                counted=counted,
                refused=refused,
            )
        )
        return 0

    async def send_one(self, communities: list[str] | None = None) -> bool:
        """Deliver the next pending delivery (of one of ``communities``, default all
        served here); False when there is none."""
        now = self._clock.now()
        if communities is None:
            communities = [account.id for account in self._accounts]
        claimed = await self._db.run(lambda c: repo.claim_next(c, now=now, communities=communities))
        if claimed is None:
            return False
        account = self._accounts[claimed.community_id]
        cs = account.customer_service
        status, reason, retry_at, counted = "sent", None, None, True
        message = campaign_text(account, claimed.title, claimed.text, claimed.topic)

        async def renew() -> None:
            await self._db.run(lambda c: repo.renew(c, claimed.id, now=self._clock.now()))

        try:
            window_open = (
                claimed.last_message_at is not None and now - claimed.last_message_at < WINDOW
            )
            # The API client's own attempts (WeChat busy, a token to refresh) can
            # outlast the lease: renewed meanwhile, so a live send is not settled as
            # unknown by another poll (it would be recorded so, though it arrived).
            if not window_open:
                raise WindowClosed(45015, "window closed before this delivery's turn")
            async with self._lease.kept(renew, f"broadcast delivery {claimed.id}"):
                await cs.send_text(claimed.openid, message)
        except WindowClosed:
            status, reason = "skipped", WINDOW_PASSED
        except NotFollowing:
            status, reason = "skipped", UNFOLLOWED
            async with self._sessionmaker.begin() as session:
                await set_following(
                    session, claimed.community_id, claimed.openid, False, now=self._clock.now()
                )
        except RateLimited:
            status, reason, counted = "pending", "rate limited (45009)", False
            retry_at = now + dt.timedelta(seconds=30)
            self._slow_until[account.id] = now + dt.timedelta(seconds=30)
            log.warning(
                "broadcast: WeChat rate limit (45009) for %s; pausing its sends for 30 s",
                account.id,
            )
        except WeChatUnavailable as exc:
            # Busy (-1), unreachable, or refused by whatever answered, still so after
            # the client's retries: WeChat did not take it, so sending it later
            # cannot make a second copy. An outage ends; a gateway that refuses
            # every send may not, and would keep the run from ever finishing.
            if isinstance(exc, Refused) and claimed.attempts >= self._max_attempts:
                status = "failed"
                reason = f"{GAVE_UP} after {claimed.attempts} attempts ({exc.errmsg})"[:200]
                log.warning("broadcast delivery %d: %s", claimed.id, reason)
            else:
                status, reason = "pending", f"WeChat unavailable ({exc.errmsg})"[:200]
                retry_at = now + dt.timedelta(
                    seconds=backoff(
                        claimed.attempts,
                        first=RETRY_FIRST.total_seconds(),
                        cap=RETRY_CAP.total_seconds(),
                    )
                )
        except OutcomeUnknown as exc:
            # Sent once (the client did not repeat it) and it may have arrived:
            # recorded once, never sent again.
            status, reason = "unknown", f"{NO_CLEAR_ANSWER} ({exc.errmsg})"[:200]
            log.warning(
                "broadcast delivery %d: %s (%s); not resent",
                claimed.id,
                NO_CLEAR_ANSWER,
                exc.errmsg,
            )
        except WeChatError as exc:
            status, reason = "failed", f"errcode {exc.errcode}"
        except Exception as exc:  # anything else: the outcome is unknown, do not resend
            status, reason = "unknown", type(exc).__name__
        recorded = await self._db.run(
            lambda c: repo.finish(
                c, claimed.id, status, reason=reason, retry_at=retry_at, counted=counted
            )
        )
        if not recorded:
            log.warning(
                "broadcast delivery %d: settled by another process while sending; "
                "its outcome (%s) is not recorded over that",
                claimed.id,
                status,
            )
        return status != "pending" or retry_at is not None


STALE_BATCH = "not settled within a day; not repeated, so nobody gets it twice"
NO_MASS_SEND = "this account has no mass send"
TOO_FEW = "a mass send needs at least two followers"


def mass_quota(zone: ZoneInfo, now: dt.datetime, per_month: int = MASS_QUOTA) -> Quota:
    """WeChat's rules at ``now``: the calendar month is the community's own."""
    local = now.astimezone(zone)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Quota(month_start.astimezone(dt.UTC), per_month, now - WINDOW)


def campaign_text(account: Account, title: str, text: str, topic_id: str) -> str:
    """What a follower receives, by either channel: the title, the text, and how to
    stop these (a resident who never asked for them must be able to)."""
    from catalog import topics as campaign

    found = campaign.find(account.catalog.current, topic_id) if topic_id else None
    stop = f"\n（回复“退订{found.name}”不再接收此类提醒）" if found else ""
    return f"【{title}】\n{text}{stop}"


@dataclass
class Draft:
    """A broadcast checked and previewed, not yet saved."""

    row: models.Broadcast
    recipients: int
    times: list[dt.datetime]
    """The next (up to five) send times, in the community's time zone."""
    every: str | None = None
    """A recurring broadcast's schedule in words (每周五上午10点), when words fit it."""
    plan: Plan | None = None
    """How it would reach its audience if it went out now (see ``repo.plan``)."""

    @property
    def dates(self) -> list[str]:
        """The send times for operators (the CLI), with English weekdays."""
        return [f"{t:%Y-%m-%d %H:%M %a}" for t in self.times]


async def prepare(
    session: AsyncSession,
    catalog: Catalog,
    *,
    topic: str,
    title: str,
    text: str,
    grid: str | None = None,
    tag: str | None = None,
    at: str | None = None,
    cron: str | None = None,
    active_from: str | None = None,
    active_until: str | None = None,
    now: dt.datetime,
    every: str | None = None,
    per_month: int = MASS_QUOTA,
    batch_size: int = MASS_BATCH_LIMIT,
) -> Draft:
    """Check a broadcast as staff wrote it (CLI or console) and preview it.

    A recurring one is given in words (``every``: 每周五上午10点, see
    :mod:`bot.jobs.schedule_words`) or, as before, as a crontab line (``cron``); it
    is stored as a crontab line. Local dates and times are read in the community's
    time zone. Raises :class:`BroadcastProblem` listing every problem found.
    """
    from catalog import topics as campaign

    problems = check_lengths(title, text)
    if every:
        try:
            worded = schedule_words.parse(every)
        except schedule_words.ScheduleWordsError as exc:
            problems.append(Problem("every", f"'{every}' names no schedule", str(exc)))
        else:
            if cron and cron != worded:
                problems.append(Problem("every/cron", "give one of them", "定期时间请只写一种。"))
            cron = worded
    if at and cron:
        problems.append(Problem("at/cron", "give one of them", "「一次」和「定期」只能选一种。"))
    if (active_from or active_until) and not cron:
        problems.append(
            Problem("from/until", "only with cron", "开始日期和结束日期只用于定期推送。")
        )
    zone = ZoneInfo(catalog.document.community.timezone)
    found = campaign.find(catalog, topic)
    if found is None:
        names = ", ".join(f"{t.id} ({t.name})" for t in campaign.topics(catalog))
        problems.append(
            Problem(
                "topic",
                f"no topic '{topic}' (topics: {names})",
                "没有这个主题，请从列表里选择。",
            )
        )
    if grid and grid not in {g.id for g in catalog.document.community.grids}:
        problems.append(Problem("grid", f"no grid '{grid}'", "没有这个网格，请从列表里选择。"))
    if cron:
        try:
            cron_trigger(cron, zone)
        except ValueError as exc:
            problems.append(
                Problem(
                    "cron",
                    f"'{cron}': {exc}",
                    "定期时间看不懂，请按“每周五上午10点”这样选择或填写。",
                )
            )

    def local(
        value: str | None, name: str, label: str, end_of_day: bool = False
    ) -> dt.datetime | None:
        if not value:
            return None
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            problems.append(
                Problem(
                    name,
                    f"'{value}' is not a date or time (YYYY-MM-DD HH:MM)",
                    f"{label}不对，请按 2026-12-07 10:00 这样填写。",
                )
            )
            return None
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            problems.append(
                Problem(
                    name,
                    f"'{value}' is out of range (years {EARLIEST_YEAR} to {LATEST_YEAR})",
                    f"{label}的年份不对，请填写 {EARLIEST_YEAR} 到 {LATEST_YEAR} 年之间的日期。",
                )
            )
            return None
        if end_of_day and len(value) <= 10:
            moment = moment.replace(hour=23, minute=59, second=59)
        return moment.replace(tzinfo=zone).astimezone(dt.UTC)

    send_at = None if cron else (local(at, "at", "发送时间") or now)
    starts = local(active_from, "from", "开始日期")
    ends = local(active_until, "until", "结束日期", end_of_day=True)
    if problems:
        raise BroadcastProblem(problems)
    assert found is not None
    row = models.Broadcast(
        community_id=catalog.community_id,
        topic=found.id,
        title=title,
        text=text,
        grid_key=grid or None,
        tag=tag or None,
        send_at=send_at,
        cron=cron or None,
        active_from=starts,
        active_until=ends,
        status="scheduled",
        created_at=now,
    )
    times, after = [], None
    for _ in range(5):
        due = next_due(row, zone, after)
        if due is None:
            break
        times.append(due.astimezone(zone))
        after = due
    if not times:
        raise BroadcastProblem(
            [
                Problem(
                    "cron/from/until",
                    "the schedule has no occurrence",
                    "按这个定期时间和起止日期，一次也不会发送，请检查。",
                )
            ]
        )
    every_zh = schedule_words.describe(cron, zone) if cron else None
    planned = await repo.plan(session, row, mass_quota(zone, now, per_month), batch_size)
    return Draft(row, planned.total, times, every_zh, planned)
