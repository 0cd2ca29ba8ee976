"""Broadcasts: who receives one, their delivery rows, and progress.

Recipients are decided when a run starts and written as one row each (one
INSERT … SELECT), so progress is visible, resumable after a crash, and nobody who
subscribes or unsubscribes meanwhile changes a run in flight.
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
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.claims import claimable
from storage.engine import dialect_name
from storage.types import utcnow


def recipients(session: AsyncSession, broadcast: models.Broadcast) -> Any:
    """SELECT of the ids of residents a broadcast goes to now."""
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
    return select(resident.id).where(and_(*conditions))


async def count_recipients(session: AsyncSession, broadcast: models.Broadcast) -> int:
    query = recipients(session, broadcast).subquery()
    return int(await session.scalar(select(func.count()).select_from(query)) or 0)


async def start_run(
    session: AsyncSession, broadcast: models.Broadcast, due_at: dt.datetime
) -> models.BroadcastRun | None:
    """Create the run of ``due_at`` and its delivery rows; None if it exists already."""
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
    who = recipients(session, broadcast).subquery()
    now = utcnow()
    await session.execute(
        insert(models.BroadcastDelivery).from_select(
            ["run_id", "resident_id", "status", "attempts", "updated_at"],
            select(literal(run.id), who.c.id, literal("pending"), literal(0), literal(now)),
        )
    )
    if dialect_name(session) == "postgresql":
        # Thousands of rows just arrived: without fresh statistics the planner sorts
        # every pending row for each claim instead of walking the (status, id) index.
        await session.execute(text("ANALYZE broadcast_deliveries"))
    return run


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
            (delivery.next_attempt_at.is_(None)) | (delivery.next_attempt_at <= now),
        )
        .order_by(delivery.id)
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
            delivery.attempts,
        )
        .join(models.Resident, delivery.resident_id == models.Resident.id)
        .join(models.BroadcastRun, delivery.run_id == models.BroadcastRun.id)
        .join(models.Broadcast, models.BroadcastRun.broadcast_id == models.Broadcast.id)
        .where(delivery.id == delivery_id)
    ).one()
    delivery_key, run_id, community_id, openid, last_message_at, title, body, attempts = row
    assert openid is not None  # recipients always have one
    return Claimed(
        delivery_key, run_id, community_id, openid, last_message_at, title, body, attempts
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
