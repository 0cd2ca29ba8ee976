"""动态考评: each unit's monthly figures, computed from the orders' event history.

Definitions (also shown on the evaluation and 公示 pages):

* **volume**: orders dispatched to the unit in the month (first dispatch).
* **响应率 (response)**: of those, the share accepted within the unit's promise
  (``accept_within_hours`` of the catalog, wall-clock hours after dispatch).
* **解决率 (resolution)**: of those, the share completed (completed or rated). An order
  the resident said was not solved at the 回访 (reopened, 重办) is not solved until the
  unit completes it again; 办不了 (not possible) and an approved 退单 count in the
  volume and are not solved.
* **不归我管 (misrouted)**: an order the unit sent back to staff as not theirs is not
  counted for it (the dispatch was wrong); re-dispatched, it counts for the new unit.
* **满意率 (satisfaction)**: of those rated, the share rated 4 or 5.
* **average hours** from dispatch to acceptance, and from dispatch to completion.
* **composite**: weighted sum of the three rates (weights configurable; a rate with
  nothing to measure is left out and the others re-weighted).

Orders of confidential items (廉情监督反映) are left out unless asked for: their
unit alone may know they exist, and a count is a trace too (a month's volume going
up by one tells staff that someone reported). Only the unit's own figures, in its
portal, include them; the 公示 page and the staff evaluation and its exports never.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models

DEFAULT_WEIGHTS = (0.1, 0.5, 0.4)


@dataclass
class UnitMonth:
    unit: str
    """The unit's catalog id."""
    unit_name: str
    month: str
    """YYYY-MM in the community's time zone."""
    volume: int = 0
    accepted_in_time: int = 0
    completed: int = 0
    rated: int = 0
    satisfied: int = 0
    reopened: int = 0
    """Orders the resident said were not solved at least once (重办)."""
    not_possible: int = 0
    """Orders the unit said it could not do (办不了)."""
    accept_hours: list[float] = field(default_factory=list)
    complete_hours: list[float] = field(default_factory=list)

    @property
    def response_rate(self) -> float | None:
        return self.accepted_in_time / self.volume if self.volume else None

    @property
    def resolution_rate(self) -> float | None:
        return self.completed / self.volume if self.volume else None

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None

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
            "response_rate": pct(self.response_rate),
            "resolution_rate": pct(self.resolution_rate),
            "satisfaction_rate": pct(self.satisfaction_rate),
            "avg_accept_hours": hours(self.avg_accept_hours),
            "avg_complete_hours": hours(self.avg_complete_hours),
            "composite": pct(self.composite(weights)),
            "reopened": self.reopened,
            "not_possible": self.not_possible,
        }


async def unit_months(
    session: AsyncSession,
    community_id: str,
    zone: ZoneInfo,
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
        history = events.get(order_id, [])
        dispatched = next((at for at, s in history if s == "dispatched"), None)
        if dispatched is None or history[-1][1] == "misrouted":
            continue  # misrouted: with staff to re-dispatch, not the unit's to count
        month = f"{dispatched.astimezone(zone):%Y-%m}"
        figures = table.setdefault(
            (unit_key, month), UnitMonth(unit=unit_key, unit_name=unit_name, month=month)
        )
        figures.volume += 1
        accepted = next((at for at, s in history if s == "accepted"), None)
        if accepted is not None:
            waited = (accepted - dispatched).total_seconds() / 3600
            figures.accept_hours.append(waited)
            if waited <= sla_hours:
                figures.accepted_in_time += 1
        completed = next((at for at, s in history if s == "completed"), None)
        verdicts = [s for _, s in history if s in ("completed", "reopened")]
        if completed is not None and verdicts[-1] == "completed":  # not reopened since
            figures.completed += 1
            figures.complete_hours.append((completed - dispatched).total_seconds() / 3600)
        figures.reopened += "reopened" in verdicts
        figures.not_possible += history[-1][1] == "not_possible"
        if rating is not None:
            figures.rated += 1
            figures.satisfied += rating >= 4
    return sorted(table.values(), key=lambda f: (f.month, f.unit), reverse=True)
