"""Broadcasts (campaigns): who receives one and by which channel, their delivery rows
and mass-send batches, and progress.

When a run starts its whole channel plan is written in one transaction: one delivery
row per follower (one INSERT … SELECT) with its channel, and the mass-send batches
with their clientmsgids. Progress is then visible, resumable after a crash, and
nobody who subscribes or unsubscribes meanwhile changes a run in flight.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    TextClause,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.claims import claimable
from storage.engine import dialect_name
from storage.types import utcnow


def _audience(
    session: AsyncSession, broadcast: models.Broadcast
) -> list[ColumnElement[bool] | TextClause]:
    """Who a broadcast is for: followers of its community subscribed to its topic,
    in its grid and with its tag when it names them."""
    resident = models.Resident
    conditions: list[ColumnElement[bool] | TextClause] = [
        resident.community_id == broadcast.community_id,
        resident.openid.is_not(None),
        resident.following.is_(True),
        exists().where(
            models.Subscription.resident_id == resident.id,
            models.Subscription.topic == broadcast.topic,
        ),
    ]
    if broadcast.grid_key:
        conditions.append(resident.grid_key == broadcast.grid_key)
    if broadcast.tag:
        if dialect_name(session) == "postgresql":
            has_tag = "residents.tags @> CAST(:tags AS jsonb)"  # JSONB containment
            conditions.append(text(has_tag).bindparams(tags=json.dumps([broadcast.tag])))
        else:
            conditions.append(
                text(
                    "EXISTS (SELECT 1 FROM json_each(residents.tags) WHERE value = :tag)"
                ).bindparams(tag=broadcast.tag)
            )
    return conditions


@dataclass(frozen=True)
class Quota:
    """What the channel plan needs to know about WeChat's rules at one moment."""

    month_start: dt.datetime
    """The start of the community's calendar month: a follower's mass messages are
    counted from here."""
    per_month: int
    """Mass messages a follower may receive a month (4 for a service account)."""
    window_from: dt.datetime
    """Followers who wrote since this moment may get a customer-service message."""


def _planned(session: AsyncSession, broadcast: models.Broadcast, quota: Quota) -> Any:
    """SELECT of (resident id, channel) for everyone a broadcast goes to now.

    ``mass`` while the follower's mass messages this month (those planned or sent by
    runs due this month) are fewer than the quota; else ``service`` inside their
    48-hour window; else ``none``. Nobody gets a template message: since 2023
    WeChat's template messages are for service notices, not publicity.
    """
    delivery, run, resident = models.BroadcastDelivery, models.BroadcastRun, models.Resident
    # Correlated, one probe of the (resident_id, channel) index per follower: its cost
    # does not hang on the planner's statistics. Joined to an aggregate instead, a
    # freshly loaded residents table (estimated at a few rows) got a nested loop
    # that aggregated every delivery once per follower: minutes for 100,000.
    batch = models.MassBatch
    used = (
        select(func.count())
        .select_from(delivery)
        .join(run, delivery.run_id == run.id)
        .outerjoin(batch, delivery.batch_id == batch.id)
        .where(
            delivery.resident_id == resident.id,
            delivery.channel == MASS,
            # unknown: probably delivered (a batch given up unsettled), so counted
            delivery.status.in_(("pending", "sending", "sent", "unknown")),
            # WeChat counts a message in the month it went out: a run due on the
            # 30th that quiet hours held to the 1st is the new month's
            func.coalesce(batch.first_sent_at, run.due_at) >= quota.month_start,
        )
        .scalar_subquery()
    )
    channel = case(
        (used < quota.per_month, literal(MASS)),
        (resident.last_message_at >= quota.window_from, literal(SERVICE)),
        else_=literal(NO_CHANNEL),
    )
    in_window = case((resident.last_message_at >= quota.window_from, 1), else_=0)
    return select(resident.id, channel.label("channel"), in_window.label("in_window")).where(
        and_(*_audience(session, broadcast))
    )


MASS, SERVICE, NO_CHANNEL = "mass", "service", "none"
"""A delivery's channel (see ``models.BroadcastDelivery``)."""
CHANNELS = (MASS, SERVICE, NO_CHANNEL)
UNREACHABLE = "monthly mass quota spent, outside the 48-hour window"
"""The reason of a ``none`` delivery (skipped): neither channel may carry it now."""


@dataclass(frozen=True)
class Plan:
    """How a broadcast would reach its audience now: shown to staff before they
    confirm it."""

    mass: int
    service: int
    unreachable: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.mass + self.service + self.unreachable

    @property
    def batches(self) -> int:
        return len(batch_sizes(self.mass, self.batch_size)) if self.mass > 1 else 0


def batch_sizes(n: int, limit: int) -> list[int]:
    """``n`` followers in the fewest mass-send calls of at most ``limit`` each, as
    even as possible: WeChat wants at least two openids a call, so no call is left
    with one (10,001 goes as 5,001 + 5,000)."""
    if n < 2:
        return []
    calls = -(-n // limit)
    base, extra = divmod(n, calls)
    return [base + 1] * extra + [base] * (calls - extra)


async def plan(
    session: AsyncSession, broadcast: models.Broadcast, quota: Quota, batch_size: int
) -> Plan:
    planned = _planned(session, broadcast, quota).subquery()
    rows = await session.execute(
        select(planned.c.channel, planned.c.in_window, func.count()).group_by(
            planned.c.channel, planned.c.in_window
        )
    )
    counts: dict[tuple[str, int], int] = {(c, w): int(n) for c, w, n in rows}
    by_channel = {c: sum(n for (k, _), n in counts.items() if k == c) for c in CHANNELS}
    mass, service, unreachable = by_channel[MASS], by_channel[SERVICE], by_channel[NO_CHANNEL]
    if mass == 1:  # a call needs two followers: the one goes as start_run sends it
        mass = 0
        if counts.get((MASS, 1)):
            service += 1
        else:
            unreachable += 1
    return Plan(mass, service, unreachable, batch_size)


async def start_run(
    session: AsyncSession,
    broadcast: models.Broadcast,
    due_at: dt.datetime,
    quota: Quota,
    batch_size: int,
) -> models.BroadcastRun | None:
    """Create the run of ``due_at``, its delivery rows with their channels, and its
    mass-send batches; None if it exists already.

    All in the caller's transaction: a run exists with its whole plan or not at all,
    and each batch's ``client_msg_id`` is fixed before any call is made."""
    existing = await session.scalar(
        select(models.BroadcastRun.id).where(
            models.BroadcastRun.broadcast_id == broadcast.id, models.BroadcastRun.due_at == due_at
        )
    )
    if existing is not None:
        return None
    run = models.BroadcastRun(broadcast_id=broadcast.id, due_at=due_at, status="running")
    session.add(run)
    await session.flush()
    who = _planned(session, broadcast, quota).subquery()
    now = utcnow()
    status = case((who.c.channel == NO_CHANNEL, literal("skipped")), else_=literal("pending"))
    reason = case((who.c.channel == NO_CHANNEL, literal(UNREACHABLE)), else_=null())
    await session.execute(
        insert(models.BroadcastDelivery).from_select(
            ["run_id", "resident_id", "channel", "status", "reason", "attempts", "updated_at"],
            select(
                literal(run.id), who.c.id, who.c.channel, status, reason, literal(0), literal(now)
            ),
        )
    )
    await _make_batches(session, run, broadcast.community_id, batch_size, now, quota.window_from)
    if dialect_name(session) == "postgresql":
        # Thousands of rows just arrived: without fresh statistics the planner sorts
        # every pending row for each claim instead of walking the (status, id) index.
        await session.execute(text("ANALYZE broadcast_deliveries"))
    return run


async def _make_batches(
    session: AsyncSession,
    run: models.BroadcastRun,
    community_id: str,
    batch_size: int,
    now: dt.datetime,
    window_from: dt.datetime,
) -> None:
    """Split the run's ``mass`` rows, in id order, into batches (see
    :func:`batch_sizes`). A lone follower cannot be mass-sent: they go as a
    customer-service message inside their window, or are skipped."""
    delivery = models.BroadcastDelivery
    ids = list(
        await session.scalars(
            select(delivery.id)
            .where(delivery.run_id == run.id, delivery.channel == MASS)
            .order_by(delivery.id)
        )
    )
    if len(ids) == 1:
        row = await session.get_one(delivery, ids[0])
        wrote = await session.scalar(
            select(models.Resident.last_message_at).where(models.Resident.id == row.resident_id)
        )
        if wrote is not None and wrote >= window_from:
            row.channel = SERVICE
        else:
            row.channel, row.status, row.reason = NO_CHANNEL, "skipped", UNREACHABLE
        return
    start = 0
    for seq, size in enumerate(batch_sizes(len(ids), batch_size), start=1):
        first, last = ids[start], ids[start + size - 1]
        start += size
        batch = models.MassBatch(
            run_id=run.id,
            community_id=community_id,
            seq=seq,
            client_msg_id=f"{community_id[:40]}-r{run.id}-b{seq}",
            size=size,
            status="pending",
            attempts=0,
            updated_at=now,
        )
        session.add(batch)
        await session.flush()
        await session.execute(
            update(delivery)
            .where(
                delivery.run_id == run.id,
                delivery.channel == MASS,
                delivery.id.between(first, last),
            )
            .values(batch_id=batch.id)
        )


_DELIVERIES: Table = models.BroadcastDelivery.__table__  # type: ignore[assignment]
_RUNS: Table = models.BroadcastRun.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Claimed:
    id: int
    run_id: int
    community_id: str
    openid: str
    last_message_at: dt.datetime | None
    title: str
    text: str
    topic: str
    attempts: int
    """Counted attempts so far, this one included."""


def claim_next(
    connection: Connection, *, now: dt.datetime, communities: Collection[str] | None = None
) -> Claimed | None:
    """The next pending delivery of any running run (of one of ``communities``, when
    given), marked ``sending``.

    A plain function of a Connection (see ``storage.batch``): a broadcast sends one
    delivery at a time, and each claim is one round trip to the database thread.
    """
    delivery = _DELIVERIES.c
    run = _RUNS.c
    query = (
        select(delivery.id)
        .join(_RUNS, delivery.run_id == run.id)
        .where(
            run.status == "running",
            delivery.status == "pending",
            delivery.channel == SERVICE,
            (delivery.next_attempt_at.is_(None)) | (delivery.next_attempt_at <= now),
        )
        .order_by(delivery.id)  # through the partial index of pending rows
        .limit(1)
    )
    if communities is not None:
        query = query.join(models.Broadcast, run.broadcast_id == models.Broadcast.id).where(
            models.Broadcast.community_id.in_(communities)
        )
    query = claimable(query, connection.dialect.name, of=_DELIVERIES)
    delivery_id = connection.scalar(query)
    if delivery_id is None:
        return None
    connection.execute(
        update(_DELIVERIES)
        .where(delivery.id == delivery_id)
        .values(status="sending", attempts=delivery.attempts + 1, updated_at=now)
    )
    row = connection.execute(
        select(
            delivery.id,
            delivery.run_id,
            models.Broadcast.community_id,
            models.Resident.openid,
            models.Resident.last_message_at,
            models.Broadcast.title,
            models.Broadcast.text,
            models.Broadcast.topic,
            delivery.attempts,
        )
        .join(models.Resident, delivery.resident_id == models.Resident.id)
        .join(models.BroadcastRun, delivery.run_id == models.BroadcastRun.id)
        .join(models.Broadcast, models.BroadcastRun.broadcast_id == models.Broadcast.id)
        .where(delivery.id == delivery_id)
    ).one()
    delivery_key, run_id, community_id, openid, last_message_at, title, body, topic, n = row
    assert openid is not None  # recipients always have one
    return Claimed(
        delivery_key, run_id, community_id, openid, last_message_at, title, body, topic, n
    )


def finish(
    connection: Connection,
    delivery_id: int,
    status: str,
    *,
    reason: str | None = None,
    retry_at: dt.datetime | None = None,
    counted: bool = True,
) -> bool:
    """Record a delivery's outcome; False when the delivery was no longer ``sending``.

    Conditional on the claim: a send that outlasted its lease may have been settled as
    ``unknown`` by another process meanwhile (it may have arrived); recording
    ``pending`` over that would send it a second time. ``counted=False`` gives the
    claim's attempt back: it did not fail for this delivery's sake (WeChat's quota for
    the whole account was spent), so it must not bring the delivery closer to being
    given up."""
    values: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "next_attempt_at": retry_at,
        "updated_at": utcnow(),
    }
    if not counted:
        values["attempts"] = _DELIVERIES.c.attempts - 1
    result = connection.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == delivery_id, _DELIVERIES.c.status == "sending")
        .values(values)
    )
    return bool(result.rowcount)


def renew(connection: Connection, delivery_id: int, *, now: dt.datetime) -> bool:
    """The process sending this delivery is alive and still at it: its lease starts
    again at ``now``. False when it is no longer ``sending`` (settled meanwhile)."""
    result = connection.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == delivery_id, _DELIVERIES.c.status == "sending")
        .values(updated_at=now)
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    community_id: str
    client_msg_id: str
    openids: list[str]
    title: str
    text: str
    topic: str
    attempts: int
    """Counted attempts so far, this one included."""
    first_sent_at: dt.datetime | None
    """When a call that WeChat may have taken first went out, before this claim;
    None if every earlier call was clearly refused (or there was none)."""


_BATCHES: Table = models.MassBatch.__table__  # type: ignore[assignment]


def claim_batch(
    connection: Connection,
    *,
    now: dt.datetime,
    stale_before: dt.datetime,
    communities: Collection[str],
) -> ClaimedBatch | None:
    """The next mass-send batch to call, marked ``sending``: a pending one that is
    due, or one left ``sending`` before ``stale_before`` by a process that stopped.
    Calling that one again is safe: its ``client_msg_id`` is the same, and WeChat
    answers a repeat with the first call's msg_id (45065) instead of sending."""
    batch, run = _BATCHES.c, _RUNS.c
    due = (
        (batch.status == "pending")
        & (batch.next_attempt_at.is_(None) | (batch.next_attempt_at <= now))
    ) | ((batch.status == "sending") & (batch.updated_at < stale_before))
    query = (
        select(batch.id)
        .join(_RUNS, batch.run_id == run.id)
        .where(run.status == "running", batch.community_id.in_(communities), due)
        .order_by(batch.id)
        .limit(1)
    )
    batch_id = connection.scalar(claimable(query, connection.dialect.name, of=_BATCHES))
    if batch_id is None:
        return None
    first_sent_at = connection.scalar(select(batch.first_sent_at).where(batch.id == batch_id))
    # Set before the call, so a process killed during it leaves the clock running;
    # a clear refusal puts the earlier value back (``batch_not_taken``).
    connection.execute(
        update(_BATCHES)
        .where(batch.id == batch_id)
        .values(
            status="sending",
            attempts=batch.attempts + 1,
            updated_at=now,
            first_sent_at=func.coalesce(batch.first_sent_at, now),
        )
    )
    row = connection.execute(
        select(
            batch.community_id,
            batch.client_msg_id,
            batch.attempts,
            models.Broadcast.title,
            models.Broadcast.text,
            models.Broadcast.topic,
        )
        .join(_RUNS, batch.run_id == run.id)
        .join(models.Broadcast, run.broadcast_id == models.Broadcast.id)
        .where(batch.id == batch_id)
    ).one()
    openids = connection.scalars(
        select(models.Resident.openid)
        .join(_DELIVERIES, _DELIVERIES.c.resident_id == models.Resident.id)
        .where(_DELIVERIES.c.batch_id == batch_id)
        .order_by(_DELIVERIES.c.id)
    ).all()
    community_id, client_msg_id, attempts, title, body, topic = row
    return ClaimedBatch(
        batch_id,
        community_id,
        client_msg_id,
        [o for o in openids if o],
        title,
        body,
        topic,
        attempts,
        first_sent_at,
    )


def batch_taken(
    connection: Connection, batch_id: int, msg_id: int, msg_data_id: int | None
) -> bool:
    """WeChat took the batch: it is ``submitted`` with WeChat's ids, and its deliveries
    ``sent``, in one transaction. False if it was no longer ``sending`` (another
    process, finding it abandoned, already recorded it)."""
    now = utcnow()
    result = connection.execute(
        update(_BATCHES)
        .where(_BATCHES.c.id == batch_id, _BATCHES.c.status == "sending")
        .values(
            status="submitted",
            msg_id=msg_id,
            msg_data_id=msg_data_id,
            error=None,
            next_attempt_at=None,
            updated_at=now,
        )
    )
    if not result.rowcount:
        return False
    connection.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.batch_id == batch_id)
        .values(status="sent", reason=None, updated_at=now)
    )
    return True


def batch_not_taken(
    connection: Connection,
    batch_id: int,
    status: str,
    *,
    error: str,
    retry_at: dt.datetime | None = None,
    counted: bool = True,
    refused: tuple[dt.datetime | None] | None = None,
) -> bool:
    """A call that did not end in WeChat taking the batch: ``pending`` again (to retry
    at ``retry_at``), or given up as ``failed`` / ``unknown`` with its deliveries, which
    then carry ``error`` as their reason. ``counted=False`` gives the attempt back (the
    account's rate, not the batch, was the trouble). ``refused``: WeChat clearly did
    not take this call, so the batch's ``first_sent_at`` goes back to this (the value
    before the claim): a refused call does not start the 24 hours after which a repeat
    is no longer safe."""
    values: dict[str, Any] = {
        "status": status,
        "error": error[:200],
        "next_attempt_at": retry_at,
        "updated_at": utcnow(),
    }
    if not counted:
        values["attempts"] = _BATCHES.c.attempts - 1
    if refused is not None:
        values["first_sent_at"] = refused[0]
    result = connection.execute(
        update(_BATCHES)
        .where(_BATCHES.c.id == batch_id, _BATCHES.c.status == "sending")
        .values(values)
    )
    if not result.rowcount:
        return False
    if status != "pending":
        connection.execute(
            update(_DELIVERIES)
            .where(_DELIVERIES.c.batch_id == batch_id)
            .values(status=status, reason=error[:200], updated_at=utcnow())
        )
    return True


def renew_batch(connection: Connection, batch_id: int, *, now: dt.datetime) -> bool:
    result = connection.execute(
        update(_BATCHES)
        .where(_BATCHES.c.id == batch_id, _BATCHES.c.status == "sending")
        .values(updated_at=now)
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class JobFinished:
    """WeChat's ``MASSSENDJOBFINISH`` event, as recorded on a batch."""

    msg_id: int
    status: str
    total: int
    filtered: int
    sent: int
    errors: int


async def record_finish(
    session: AsyncSession, community_id: str, finished: JobFinished, now: dt.datetime
) -> bool:
    """Record WeChat's counts on the batch it names; False if no batch of the
    community has that msg_id (a mass send made elsewhere, e.g. in WeChat's own
    console). The same event again writes the same values."""
    result = await session.execute(
        update(models.MassBatch)
        .where(
            models.MassBatch.community_id == community_id,
            models.MassBatch.msg_id == finished.msg_id,
        )
        .values(
            finish_status=finished.status[:64],
            total_count=finished.total,
            filter_count=finished.filtered,
            sent_count=finished.sent,
            error_count=finished.errors,
            finished_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MassProgress:
    """A broadcast's mass-send batches, and what WeChat reported of them."""

    batches: int
    submitted: int
    finished: int
    planned: int
    """Followers in the batches."""
    reported_sent: int
    """Followers WeChat reported as reached (finish events so far)."""
    reported_filtered_out: int
    """Followers WeChat left out (opted out of the account's messages, over their
    monthly four): TotalCount - FilterCount."""
    errors: list[str]


async def mass_progress(session: AsyncSession, broadcast_id: int) -> MassProgress:
    batch = models.MassBatch
    rows = (
        await session.execute(
            select(
                batch.status,
                batch.size,
                batch.finished_at,
                batch.sent_count,
                batch.total_count,
                batch.filter_count,
                batch.error,
            )
            .join(models.BroadcastRun, batch.run_id == models.BroadcastRun.id)
            .where(models.BroadcastRun.broadcast_id == broadcast_id)
        )
    ).all()
    return MassProgress(
        batches=len(rows),
        submitted=sum(1 for r in rows if r.status == "submitted"),
        finished=sum(1 for r in rows if r.finished_at is not None),
        planned=sum(r.size for r in rows),
        reported_sent=sum(r.sent_count or 0 for r in rows),
        reported_filtered_out=sum(
            (r.total_count or 0) - (r.filter_count or 0) for r in rows if r.finished_at
        ),
        errors=sorted({r.error for r in rows if r.error and r.status in ("failed", "unknown")}),
    )


async def reached_addresses(
    session: AsyncSession, broadcast_id: int
) -> list[tuple[int, str | None]]:
    """(resident id, where they said they live) of each resident the account reached
    with a broadcast: a customer-service message sent, or a place in a mass-send batch
    WeChat took (its finish event counts whom it filtered out, but does not name them).
    One join, whatever the number: no list of ids goes back to the database."""
    rows = await session.execute(
        select(models.Resident.id, models.Resident.building)
        .join(models.BroadcastDelivery, models.BroadcastDelivery.resident_id == models.Resident.id)
        .join(models.BroadcastRun, models.BroadcastDelivery.run_id == models.BroadcastRun.id)
        .where(
            models.BroadcastRun.broadcast_id == broadcast_id,
            models.BroadcastDelivery.status == "sent",
        )
        .distinct()
    )
    return [(resident_id, building) for resident_id, building in rows]


ABANDONED = "process stopped while sending"
"""The reason of a delivery settled as ``unknown`` after its process died."""


async def settle_in_flight(session: AsyncSession, *, older_than: dt.datetime) -> int:
    """Deliveries left ``sending`` by a process that died: WeChat may or may not have
    taken them, and it has no idempotency key to ask. They become ``unknown`` and
    are not sent again: a resident never gets a notice twice."""
    result = await session.execute(
        update(models.BroadcastDelivery)
        .where(
            models.BroadcastDelivery.status == "sending",
            models.BroadcastDelivery.updated_at < older_than,
        )
        .values(status="unknown", reason=ABANDONED, updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def close_finished_runs(session: AsyncSession) -> None:
    busy = exists().where(
        models.BroadcastDelivery.run_id == models.BroadcastRun.id,
        models.BroadcastDelivery.status.in_(("pending", "sending")),
    )
    await session.execute(
        update(models.BroadcastRun)
        .where(models.BroadcastRun.status == "running", ~busy)
        .values(status="done", finished_at=utcnow())
    )


@dataclass(frozen=True)
class Progress:
    total: int
    by_status: dict[str, int]
    failures: dict[str, int]
    runs: int

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.by_status.items() if s not in ("pending", "sending"))


async def progress(session: AsyncSession, broadcast_id: int) -> Progress:
    base = (
        select(models.BroadcastDelivery.status, models.BroadcastDelivery.reason, func.count())
        .join(models.BroadcastRun, models.BroadcastDelivery.run_id == models.BroadcastRun.id)
        .where(models.BroadcastRun.broadcast_id == broadcast_id)
        .group_by(models.BroadcastDelivery.status, models.BroadcastDelivery.reason)
    )
    by_status: dict[str, int] = {}
    failures: dict[str, int] = {}
    for status, reason, n in await session.execute(base):
        by_status[status] = by_status.get(status, 0) + int(n)
        if status in ("failed", "skipped", "unknown") and reason:
            failures[reason] = failures.get(reason, 0) + int(n)
    runs = await session.scalar(
        select(func.count()).where(models.BroadcastRun.broadcast_id == broadcast_id)
    )
    return Progress(sum(by_status.values()), by_status, failures, int(runs or 0))


async def delivery_rows(session: AsyncSession, broadcast_id: int) -> list[tuple[Any, ...]]:
    """For the CSV export: run time, openid, status, reason, attempts, updated."""
    rows = await session.execute(
        select(
            models.BroadcastRun.due_at,
            models.Resident.openid,
            models.BroadcastDelivery.status,
            models.BroadcastDelivery.reason,
            models.BroadcastDelivery.attempts,
            models.BroadcastDelivery.updated_at,
        )
        .join(models.BroadcastRun, models.BroadcastDelivery.run_id == models.BroadcastRun.id)
        .join(models.Resident, models.BroadcastDelivery.resident_id == models.Resident.id)
        .where(models.BroadcastRun.broadcast_id == broadcast_id)
        .order_by(models.BroadcastRun.due_at, models.BroadcastDelivery.id)
    )
    return [tuple(r) for r in rows]


async def last_run_due(session: AsyncSession, broadcast_id: int) -> dt.datetime | None:
    return await session.scalar(
        select(func.max(models.BroadcastRun.due_at)).where(
            models.BroadcastRun.broadcast_id == broadcast_id
        )
    )
