"""Door-to-door visits (下户走访): grid workers, the visits they record, the campaign a
visit belongs to, the follow-ups (需跟进) visits make, and which households a
campaign's visits reached (for the coverage page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, desc, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.repositories.households import HouseholdInfo, households, info, label

REACHED = "reached"
"""已宣传: the household heard the campaign."""
NOBODY_HOME = "nobody_home"
"""没人在家: nobody opened; the household is still to be reached."""
FOLLOW_UP = "follow_up"
"""需跟进: reached, and something needs doing (a :class:`models.VisitFollowUp`)."""
OUTCOMES = (REACHED, NOBODY_HOME, FOLLOW_UP)
REACHING = (REACHED, FOLLOW_UP)
"""Outcomes by which a visit reached its household."""

CAMPAIGN_WINDOW = dt.timedelta(days=30)
"""A campaign is in effect for visits this long after a run of it went out."""


async def worker_grids(session: AsyncSession, community_id: str, openid: str) -> list[str]:
    """The grids ``openid`` is an active grid worker of (none: not a grid worker)."""
    rows = await session.scalars(
        select(models.GridWorker.grid_key)
        .where(
            models.GridWorker.community_id == community_id,
            models.GridWorker.openid == openid,
            models.GridWorker.active.is_(True),
        )
        .order_by(models.GridWorker.id)
    )
    return list(rows)


async def campaign_for_grid(
    session: AsyncSession, community_id: str, grid_key: str, now: dt.datetime
) -> models.Broadcast | None:
    """The campaign in effect for a grid: of the community's broadcasts (not
    cancelled) for the whole community or this grid, the one with the latest run
    due in the last 30 days and not after ``now``. What went out, not what was
    created: a campaign scheduled for next week has not started, and a weekly one
    created months ago is still running."""
    latest = func.max(models.BroadcastRun.due_at)
    return await session.scalar(
        select(models.Broadcast)
        .join(models.BroadcastRun, models.BroadcastRun.broadcast_id == models.Broadcast.id)
        .where(
            models.Broadcast.community_id == community_id,
            models.Broadcast.status != "cancelled",
            (models.Broadcast.grid_key.is_(None)) | (models.Broadcast.grid_key == grid_key),
            models.BroadcastRun.due_at > now - CAMPAIGN_WINDOW,
            models.BroadcastRun.due_at <= now,
        )
        .group_by(models.Broadcast.id)
        .order_by(desc(latest), desc(models.Broadcast.id))
        .limit(1)
    )


@dataclass(frozen=True)
class Recorded:
    visit: models.HouseholdVisit
    created: bool
    """False: this message had recorded it already (a retried message)."""


async def record_visit(
    session: AsyncSession,
    *,
    household: models.Household,
    openid: str,
    outcome: str,
    note: str,
    broadcast_id: int | None,
    message_key: str,
) -> Recorded:
    """Record a visit once per message; a ``follow_up`` makes its open follow-up."""
    assert outcome in OUTCOMES, outcome
    done = await session.scalar(
        select(models.HouseholdVisit).where(
            models.HouseholdVisit.community_id == household.community_id,
            models.HouseholdVisit.message_key == message_key,
        )
    )
    if done is not None:
        return Recorded(done, created=False)
    visit = models.HouseholdVisit(
        community_id=household.community_id,
        household_id=household.id,
        grid_key=household.grid_key,
        openid=openid,
        broadcast_id=broadcast_id,
        outcome=outcome,
        note=note,
        message_key=message_key,
    )
    session.add(visit)
    await session.flush()
    if outcome == FOLLOW_UP:
        session.add(
            models.VisitFollowUp(
                community_id=household.community_id,
                visit_id=visit.id,
                household_id=household.id,
                grid_key=household.grid_key,
                note=note,
            )
        )
        await session.flush()
    return Recorded(visit, created=True)


def _campaign_is(broadcast_id: int | None) -> ColumnElement[bool]:
    if broadcast_id is None:
        return models.HouseholdVisit.broadcast_id.is_(None)
    return models.HouseholdVisit.broadcast_id == broadcast_id


async def not_reached(
    session: AsyncSession,
    community_id: str,
    grid_keys: Collection[str],
    broadcast_id: int | None,
    *,
    since: dt.datetime | None = None,
) -> list[HouseholdInfo]:
    """Households of the grids no visit of the campaign reached yet (with no
    campaign: no visit outside one since ``since``), elderly living alone first."""
    condition = _campaign_is(broadcast_id)
    if broadcast_id is None and since is not None:
        condition = condition & (models.HouseholdVisit.created_at >= since)
    reached = set(
        await session.scalars(
            select(models.HouseholdVisit.household_id).where(
                models.HouseholdVisit.community_id == community_id,
                models.HouseholdVisit.grid_key.in_(list(grid_keys)),
                models.HouseholdVisit.outcome.in_(REACHING),
                condition,
            )
        )
    )
    listed = await households(session, community_id, grid_keys)
    return [h for h in listed if h.id not in reached]


async def reached_by_visit(
    session: AsyncSession, community_id: str, broadcast_id: int | None
) -> set[int]:
    """Ids of the households a visit of the campaign reached (已宣传 or 需跟进);
    ``broadcast_id`` None: visits made while no campaign was in effect."""
    rows = await session.scalars(
        select(models.HouseholdVisit.household_id)
        .where(
            models.HouseholdVisit.community_id == community_id,
            models.HouseholdVisit.outcome.in_(REACHING),
            _campaign_is(broadcast_id),
        )
        .distinct()
    )
    return set(rows)


async def nobody_home_only(
    session: AsyncSession, community_id: str, broadcast_id: int | None
) -> set[int]:
    """Ids of the households the campaign's visits found nobody home at, and never
    reached (knocked on, still to be reached)."""
    visit = models.HouseholdVisit
    later = models.HouseholdVisit.__table__.alias("reaching")
    rows = await session.scalars(
        select(visit.household_id)
        .where(
            visit.community_id == community_id,
            visit.outcome == NOBODY_HOME,
            _campaign_is(broadcast_id),
            ~exists().where(
                later.c.household_id == visit.household_id,
                later.c.outcome.in_(REACHING),
                later.c.broadcast_id == visit.broadcast_id
                if broadcast_id is not None
                else later.c.broadcast_id.is_(None),
            ),
        )
        .distinct()
    )
    return set(rows)


@dataclass(frozen=True)
class Task:
    id: int
    grid_key: str
    household: str
    """3栋2单元501."""
    note: str
    status: str
    created_at: dt.datetime
    done_by: str | None
    done_at: dt.datetime | None


def _task(task: models.VisitFollowUp, household: models.Household) -> Task:
    return Task(
        task.id,
        task.grid_key,
        label(household),
        task.note,
        task.status,
        task.created_at,
        task.done_by,
        task.done_at,
    )


async def tasks(
    session: AsyncSession,
    community_id: str,
    grid_keys: Collection[str] | None = None,
    *,
    open_only: bool = False,
    limit: int = 200,
) -> list[Task]:
    """Follow-ups of the grids (all grids: None): open ones first, oldest first among
    them; then those done, the latest first. ``open_only``: the ``limit`` open ones
    that have waited longest."""
    query = (
        select(models.VisitFollowUp, models.Household)
        .join(models.Household, models.Household.id == models.VisitFollowUp.household_id)
        .where(models.VisitFollowUp.community_id == community_id)
    )
    if grid_keys is not None:
        query = query.where(models.VisitFollowUp.grid_key.in_(list(grid_keys)))
    if open_only:
        query = query.where(models.VisitFollowUp.status == "open")
        query = query.order_by(models.VisitFollowUp.id).limit(limit)
    else:
        query = query.order_by(
            models.VisitFollowUp.status != "open", models.VisitFollowUp.id.desc()
        ).limit(limit)
    rows = (await session.execute(query)).all()
    listed = [_task(task, household) for task, household in rows]
    opened = sorted((t for t in listed if t.status == "open"), key=lambda t: t.id)
    return opened + [t for t in listed if t.status != "open"]


async def find_task(session: AsyncSession, community_id: str, task_id: int) -> Task | None:
    """One follow-up of the community, open or done."""
    row = (
        await session.execute(
            select(models.VisitFollowUp, models.Household)
            .join(models.Household, models.Household.id == models.VisitFollowUp.household_id)
            .where(
                models.VisitFollowUp.community_id == community_id,
                models.VisitFollowUp.id == task_id,
            )
        )
    ).first()
    return _task(*row) if row is not None else None


async def count_open(session: AsyncSession, community_id: str, grid_keys: Collection[str]) -> int:
    """How many follow-ups of the grids are open."""
    found = await session.scalar(
        select(func.count()).where(
            models.VisitFollowUp.community_id == community_id,
            models.VisitFollowUp.status == "open",
            models.VisitFollowUp.grid_key.in_(list(grid_keys)),
        )
    )
    return int(found or 0)


async def close_task(
    session: AsyncSession,
    community_id: str,
    task_id: int,
    *,
    done_by: str,
    now: dt.datetime,
    grid_keys: Collection[str] | None = None,
) -> bool:
    """Mark an open follow-up done (once: False when it was not open, or not one of
    the grids')."""
    query = (
        update(models.VisitFollowUp)
        .where(
            models.VisitFollowUp.id == task_id,
            models.VisitFollowUp.community_id == community_id,
            models.VisitFollowUp.status == "open",
        )
        .values(status="done", done_by=done_by, done_at=now)
    )
    if grid_keys is not None:
        query = query.where(models.VisitFollowUp.grid_key.in_(list(grid_keys)))
    result = await session.execute(query)
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class VisitRow:
    grid_key: str
    household: HouseholdInfo
    outcome: str
    note: str
    openid: str
    broadcast_topic: str | None
    created_at: dt.datetime


async def recent_visits(
    session: AsyncSession, community_id: str, *, limit: int = 100
) -> list[VisitRow]:
    """The latest visits of the community, newest first."""
    rows = await session.execute(
        select(models.HouseholdVisit, models.Household, models.Broadcast.topic)
        .join(models.Household, models.Household.id == models.HouseholdVisit.household_id)
        .outerjoin(models.Broadcast, models.Broadcast.id == models.HouseholdVisit.broadcast_id)
        .where(models.HouseholdVisit.community_id == community_id)
        .order_by(desc(models.HouseholdVisit.created_at), desc(models.HouseholdVisit.id))
        .limit(limit)
    )
    return [
        VisitRow(
            visit.grid_key,
            info(household),
            visit.outcome,
            visit.note,
            visit.openid,
            topic,
            visit.created_at,
        )
        for visit, household, topic in rows
    ]


@dataclass(frozen=True)
class BoundWorker:
    id: int
    grid_key: str
    name: str | None
    """The name the worker gave as a resident, if any (their openid is never shown)."""
    bound_at: dt.datetime
    last_visit: dt.datetime | None


async def bound_workers(session: AsyncSession, community_id: str) -> list[BoundWorker]:
    """The community's active grid workers, the earliest bound first, with when each
    last recorded a visit in their grid."""
    worker = models.GridWorker
    visit = models.HouseholdVisit
    last_visit = (
        select(func.max(visit.created_at))
        .where(
            visit.community_id == worker.community_id,
            visit.grid_key == worker.grid_key,
            visit.openid == worker.openid,
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(worker, models.Resident.name, last_visit)
        .outerjoin(
            models.Resident,
            (models.Resident.community_id == worker.community_id)
            & (models.Resident.openid == worker.openid),
        )
        .where(worker.community_id == community_id, worker.active.is_(True))
        .order_by(worker.bound_at, worker.id)
    )
    return [BoundWorker(w.id, w.grid_key, name, w.bound_at, last) for w, name, last in rows]


async def unbind_worker(
    session: AsyncSession, community_id: str, worker_id: int
) -> BoundWorker | None:
    """Unbind an active grid worker of the community (who left): from now on the bot
    treats them as any resident. None when there is no such active worker."""
    found = await session.scalar(
        select(models.GridWorker).where(
            models.GridWorker.id == worker_id,
            models.GridWorker.community_id == community_id,
            models.GridWorker.active.is_(True),
        )
    )
    if found is None:
        return None
    found.active = False
    await session.flush()
    name = await session.scalar(
        select(models.Resident.name).where(
            models.Resident.community_id == community_id, models.Resident.openid == found.openid
        )
    )
    return BoundWorker(found.id, found.grid_key, name, found.bound_at, None)
