"""The evaluation figures as the pages show them: the rules they are counted by (the
reminders' working-time calendar, the settings' promise and minimum sample), periods
of months, a ranking that leaves out units with too few orders, and the charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from bot import keys
from bot.web.charts import bar_chart, line_chart, month_label
from catalog.model import Catalog
from storage.repositories.evaluation import Rules, UnitMonth, combined

PERIODS = {1: "一个月", 3: "近三个月", 6: "近半年", 12: "近一年"}
"""Months a page may cover, as the period links name them."""
MEASURES = (
    ("response_rate", "响应率"),
    ("resolution_rate", "解决率"),
    ("satisfaction_rate", "满意率"),
)


def rules(app: web.Application, catalog: Catalog) -> Rules:
    settings = app[keys.SETTINGS]
    worktime = app[keys.POLICY].worktime(catalog)
    return Rules(
        now=app[keys.CLOCK].now(),
        deadline=worktime.add_working_hours,
        complete_within_hours=settings.complete_within_hours,
        min_sample=settings.evaluation_min_sample,
    )


def last_months(now: dt.datetime, zone: ZoneInfo, count: int, end: str | None = None) -> list[str]:
    """``count`` months (``YYYY-MM``, oldest first) ending with ``end`` or this month."""
    if end is not None:
        year, month = (int(part) for part in end.split("-"))
    else:
        local = now.astimezone(zone)
        year, month = local.year, local.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def shift_month(month: str, by: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def period_label(months: Sequence[str]) -> str:
    if len(months) == 1:
        return month_label(months[0], first=True)
    return f"{month_label(months[0], first=True)}至{month_label(months[-1], first=True)}"


@dataclass
class Standing:
    """One unit over a period: its figures, and its place if it has enough orders."""

    place: int | None
    row: dict[str, object]


def standings(
    figures: Sequence[UnitMonth],
    months: Sequence[str],
    weights: tuple[float, float, float],
) -> list[Standing]:
    """Units over ``months``, best composite first; those without a rate with enough
    orders (样本不足) last, without a place."""
    label = period_label(months)
    by_unit: dict[str, list[UnitMonth]] = {}
    for month in figures:
        if month.month in months:
            by_unit.setdefault(month.unit, []).append(month)
    totals = [combined(unit_months, label) for unit_months in by_unit.values()]
    ranked = sorted(
        (t for t in totals if t.ranked), key=lambda t: (-(t.composite(weights) or 0), t.unit_name)
    )
    unranked = sorted((t for t in totals if not t.ranked), key=lambda t: t.unit_name)
    return [Standing(i + 1, t.as_row(weights)) for i, t in enumerate(ranked)] + [
        Standing(None, t.as_row(weights)) for t in unranked
    ]


def charts(
    figures: Sequence[UnitMonth], months: Sequence[str], weights: tuple[float, float, float]
) -> list[Markup]:
    """One month: bars of each unit's three rates. Longer: a trend line per unit for
    the composite and for each rate (a month with too few orders is a gap)."""
    names = {f.unit: f.unit_name for f in figures if f.month in months}
    if not names:
        return []
    units = sorted(names, key=lambda u: names[u])
    table = {(f.unit, f.month): f.as_row(weights) for f in figures}

    def value(unit: str, month: str, key: str) -> float | None:
        row = table.get((unit, month))
        number = None if row is None else row[key]
        return float(number) if isinstance(number, int | float) else None

    if len(months) == 1:
        month = months[0]
        groups = [(names[u], [value(u, month, key) for key, _ in MEASURES]) for u in units]
        if not any(v is not None for _, values in groups for v in values):
            return []  # every unit 样本不足: the page says so rather than draw nothing
        title = f"{month_label(month, first=True)}各单位办理情况"
        return [bar_chart(title, [label for _, label in MEASURES], groups)]
    drawn = []
    for key, label in (("composite", "综合得分"), *MEASURES):
        series = [(names[u], [value(u, m, key) for m in months]) for u in units]
        series = [(name, values) for name, values in series if any(v is not None for v in values)]
        if series:
            drawn.append(line_chart(f"{label}变化（{period_label(months)}）", months, series))
    return drawn
