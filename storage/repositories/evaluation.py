"""动态考评: each unit's monthly figures, computed from the orders' event history.

Definitions (also shown on the evaluation and 公示 pages). All the counting rules
are in :func:`count_order`; the time limits are working hours on the calendar the
reminders use (``Rules.deadline``, from bot/worktime.py).

* **volume**: orders dispatched to the unit in the month (first dispatch).
* **响应率 (response)**: of the orders whose acceptance is decided, the share accepted
  within the unit's promise (``accept_within_hours`` of the catalog, in working hours
  after dispatch). Decided: accepted, or not accepted and the promise has run out. An
  order still inside its promise is not a failure yet, and one the resident withdrew
  before the promise ran out is no failure at all.
* **解决率 (resolution)**: likewise, of the orders whose completion is decided
  (completed, or not completed by ``Rules.complete_within_hours`` working hours after
  dispatch), the share completed.
  An order the resident said was not solved at the 回访 (reopened, 重办) is not
  solved until the unit completes it again; 办不了 (not possible) and an approved 退单
  are decided at once, as not solved.
* **不归我管 (misrouted)**: an order the unit sent back to staff as not theirs is not
  counted for it (the dispatch was wrong); re-dispatched, it counts for the new unit.
* **满意率 (satisfaction)**: of those rated, the share rated 4 or 5.
* **sample**: each rate's denominator. A rate over fewer than ``Rules.min_sample``
  orders is not given (样本不足): one order would make it 0 % or 100 %.
* **average hours** (wall-clock) from dispatch to acceptance, and to completion.
* **composite**: weighted sum of the rates that have a sample (weights configurable;
  the others re-weighted). A unit-month without one is not ranked.

Orders of confidential items (廉情监督反映) are left out unless asked for: their
unit alone may know they exist, and a count is a trace too (a month's volume going
up by one tells staff that someone reported). Only the unit's own figures, in its
portal, include them; the 公示 page and the staff evaluation and its exports never.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models

DEFAULT_WEIGHTS = (0.1, 0.5, 0.4)


def _wall_clock(start: dt.datetime, hours: float) -> dt.datetime:
    return start + dt.timedelta(hours=hours)


@dataclass(frozen=True)
class Rules:
    """When an order's outcome is decided, and how many make a rate."""

    now: dt.datetime
    deadline: Callable[[dt.datetime, float], dt.datetime] = _wall_clock
    """``deadline(dispatched, hours)``: when a promise of ``hours`` runs out; the web
    pages pass the working-time calendar of the reminders (``WorkTime``)."""
    complete_within_hours: float = 27.0
    """Working hours after dispatch by which an order should be completed."""
    min_sample: int = 5
    """Orders a rate needs before it is given (and a unit ranked)."""


@dataclass
class OrderHistory:
    """One order as the figures see it: its events (oldest first) and rating."""

    rating: int | None
    events: list[tuple[dt.datetime, str]]
    accept_within_hours: float

    def first(self, status: str) -> dt.datetime | None:
        return next((at for at, s in self.events if s == status), None)

    def latest(self, status: str) -> dt.datetime | None:
        return next((at for at, s in reversed(self.events) if s == status), None)

    def last(self) -> str | None:
        """The status it is in now."""
        return self.events[-1][1] if self.events else None


@dataclass
class UnitMonth:
    unit: str
    """The unit's catalog id."""
    unit_name: str
    month: str
    """YYYY-MM in the community's time zone."""
    min_sample: int = 1
    volume: int = 0
    response_sample: int = 0
    """Orders whose acceptance is decided (the denominator of 响应率)."""
    accepted_in_time: int = 0
    resolution_sample: int = 0
    """Orders whose completion is decided (the denominator of 解决率)."""
    completed: int = 0
    pending: int = 0
    """Orders still inside a promise, not counted in a rate yet."""
    rated: int = 0
    satisfied: int = 0
    reopened: int = 0
    """Orders the resident said were not solved at least once (重办)."""
    not_possible: int = 0
    """Orders the unit said it could not do (办不了)."""
    accept_hours: list[float] = field(default_factory=list)
    complete_hours: list[float] = field(default_factory=list)

    def _rate(self, part: int, sample: int) -> float | None:
        return part / sample if sample and sample >= self.min_sample else None

    @property
    def response_rate(self) -> float | None:
        return self._rate(self.accepted_in_time, self.response_sample)

    @property
    def resolution_rate(self) -> float | None:
        return self._rate(self.completed, self.resolution_sample)

    @property
    def satisfaction_rate(self) -> float | None:
        return self._rate(self.satisfied, self.rated)

    @property
    def ranked(self) -> bool:
        """Enough orders for at least one rate, so a composite to rank by."""
        rates = (self.response_rate, self.resolution_rate, self.satisfaction_rate)
        return any(rate is not None for rate in rates)

    @property
    def avg_accept_hours(self) -> float | None:
        return sum(self.accept_hours) / len(self.accept_hours) if self.accept_hours else None

    @property
    def avg_complete_hours(self) -> float | None:
        return sum(self.complete_hours) / len(self.complete_hours) if self.complete_hours else None

    def composite(self, weights: tuple[float, float, float] = DEFAULT_WEIGHTS) -> float | None:
        rates = (self.response_rate, self.resolution_rate, self.satisfaction_rate)
        used = [(w, r) for w, r in zip(weights, rates, strict=True) if r is not None]
        total = sum(w for w, _ in used)
        return sum(w * r for w, r in used) / total if used and total else None

    def as_row(self, weights: tuple[float, float, float] = DEFAULT_WEIGHTS) -> dict[str, object]:
        def pct(value: float | None) -> float | None:
            return None if value is None else round(100 * value, 1)

        def hours(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "month": self.month,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "volume": self.volume,
            "pending": self.pending,
            "response_sample": self.response_sample,
            "resolution_sample": self.resolution_sample,
            "satisfaction_sample": self.rated,
            "min_sample": self.min_sample,
            "response_rate": pct(self.response_rate),
            "resolution_rate": pct(self.resolution_rate),
            "satisfaction_rate": pct(self.satisfaction_rate),
            "avg_accept_hours": hours(self.avg_accept_hours),
            "avg_complete_hours": hours(self.avg_complete_hours),
            "composite": pct(self.composite(weights)),
            "reopened": self.reopened,
            "not_possible": self.not_possible,
            "ranked": self.ranked,
        }


def count_order(figures: UnitMonth, order: OrderHistory, rules: Rules) -> None:
    """Count one dispatched order in its unit-month: every rule of the figures is here.

    Success is counted when it happens; failure only once the promise has run out (an
    order minutes old is nobody's failure). A resident's cancellation before the
    promise ran out takes the order out of that rate."""
    dispatched = order.first("dispatched")
    assert dispatched is not None
    figures.volume += 1
    accepted = order.first("accepted")
    completed = order.first("completed")
    cancelled = order.first("cancelled")
    waiting = False

    accept_due = rules.deadline(dispatched, order.accept_within_hours)
    if accepted is not None:
        figures.response_sample += 1
        figures.accepted_in_time += accepted <= accept_due
        figures.accept_hours.append((accepted - dispatched).total_seconds() / 3600)
    elif cancelled is not None and cancelled <= accept_due:
        pass  # withdrawn before the unit was due to accept
    elif rules.now > accept_due:
        figures.response_sample += 1  # the promise ran out unaccepted
    else:
        waiting = True

    # 回访: a completion the resident then said was not solved (重办) does not count
    # until the unit completes it again.
    verdicts = [s for _, s in order.events if s in ("completed", "reopened")]
    reopened = "reopened" in verdicts
    solved = bool(verdicts) and verdicts[-1] == "completed"
    figures.reopened += reopened
    figures.not_possible += order.last() == "not_possible"
    complete_due = rules.deadline(dispatched, rules.complete_within_hours)
    if solved:
        completed = order.latest("completed")
        assert completed is not None
        figures.resolution_sample += 1
        figures.completed += 1
        figures.complete_hours.append((completed - dispatched).total_seconds() / 3600)
    elif reopened or order.last() in ("not_possible", "returned"):
        figures.resolution_sample += 1  # decided, and not solved
    elif cancelled is not None and cancelled <= complete_due:
        pass
    elif rules.now > complete_due:
        figures.resolution_sample += 1
    else:
        waiting = True
    figures.pending += waiting

    if order.rating is not None:
        figures.rated += 1
        figures.satisfied += order.rating >= 4


def combined(months: Iterable[UnitMonth], label: str) -> UnitMonth:
    """One unit's figures over several months (a period), as one ``UnitMonth``."""
    months = list(months)
    total = UnitMonth(
        unit=months[0].unit,
        unit_name=months[0].unit_name,
        month=label,
        min_sample=months[0].min_sample,
    )
    for m in months:
        for name in (
            "volume",
            "response_sample",
            "accepted_in_time",
            "resolution_sample",
            "completed",
            "pending",
            "rated",
            "satisfied",
        ):
            setattr(total, name, getattr(total, name) + getattr(m, name))
        total.accept_hours += m.accept_hours
        total.complete_hours += m.complete_hours
    return total


async def unit_months(
    session: AsyncSession,
    community_id: str,
    zone: ZoneInfo,
    rules: Rules,
    *,
    unit: str | None = None,
    include_confidential: bool = False,
) -> list[UnitMonth]:
    """Figures of every unit and month with dispatched orders, newest month first.

    ``include_confidential`` only for a unit's own figures (with ``unit``)."""
    query = (
        select(
            models.Order.id,
            models.Order.rating,
            models.Unit.key,
            models.Unit.name,
            models.Unit.accept_within_hours,
        )
        .join(models.Unit, models.Order.unit_id == models.Unit.id)
        .join(models.Item, models.Order.item_id == models.Item.id)
        .where(models.Order.community_id == community_id)
    )
    if unit is not None:
        query = query.where(models.Unit.key == unit)
    if not include_confidential:
        query = query.where(models.Item.confidential.is_(False))
    orders = {row[0]: row for row in await session.execute(query)}
    if not orders:
        return []
    events: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for order_id, at, to_status in await session.execute(
        select(models.OrderEvent.order_id, models.OrderEvent.at, models.OrderEvent.to_status)
        .where(models.OrderEvent.order_id.in_(list(orders)))
        .order_by(models.OrderEvent.order_id, models.OrderEvent.at, models.OrderEvent.id)
    ):
        events[order_id].append((at, to_status))

    table: dict[tuple[str, str], UnitMonth] = {}
    for order_id, (_, rating, unit_key, unit_name, sla_hours) in orders.items():
        history = OrderHistory(rating, events.get(order_id, []), sla_hours)
        dispatched = history.first("dispatched")
        if dispatched is None or history.last() == "misrouted":
            continue  # misrouted: with staff to re-dispatch, not the unit's to count
        month = f"{dispatched.astimezone(zone):%Y-%m}"
        figures = table.setdefault(
            (unit_key, month),
            UnitMonth(unit=unit_key, unit_name=unit_name, month=month, min_sample=rules.min_sample),
        )
        count_order(figures, history, rules)
    return sorted(table.values(), key=lambda f: (f.month, f.unit), reverse=True)
