"""Working hours, public holidays and quiet hours, in the community's time zone.

SLA clocks (a unit must accept within 4 working hours) count only working time:
Monday to Friday within the working day, minus China's public holidays and plus the
weekend days made working days (调休). The calendar comes from ``chinese_calendar``,
which publishes each year once the State Council announces it; for a year it does
not know yet, plain weekdays count (and a warning says so once).

Quiet hours (default 22:00-08:00) are when residents are not messaged: a message
due then waits until they end.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)


@functools.cache
def is_workday(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package has no data for yet
        _warn_once(day.year)
        return day.isoweekday() <= 5


@functools.cache
def _warn_once(year: int) -> None:
    log.warning("no public-holiday data for %d yet: counting Monday-Friday as working days", year)


def parse_span(text: str) -> tuple[dt.time, dt.time]:
    """``"09:00-18:00"`` → (09:00, 18:00); ValueError naming the value otherwise."""
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"'{text}': expected HH:MM-HH:MM, e.g. 09:00-18:00") from None
    return start, end


@dataclass(frozen=True)
class WorkTime:
    zone: ZoneInfo
    day_start: dt.time = dt.time(9, 0)
    day_end: dt.time = dt.time(18, 0)
    quiet_start: dt.time = dt.time(22, 0)
    quiet_end: dt.time = dt.time(8, 0)

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The moment ``hours`` of working time after ``start`` (both aware)."""
        remaining = dt.timedelta(hours=hours)
        local = start.astimezone(self.zone)
        for _ in range(3660):  # ten years of days: a bound, never reached in practice
            day = local.date()
            opens = dt.datetime.combine(day, self.day_start, self.zone)
            closes = dt.datetime.combine(day, self.day_end, self.zone)
            if is_workday(day) and local < closes:
                begin = max(local, opens)
                if begin + remaining <= closes:
                    return (begin + remaining).astimezone(dt.UTC)
                remaining -= closes - begin
            next_day = day + dt.timedelta(days=1)
            local = dt.datetime.combine(next_day, self.day_start, self.zone)
        raise ValueError(f"{hours} working hours do not fit in ten years")

    def in_quiet_hours(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def after_quiet_hours(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` itself, or the end of the quiet hours it falls in."""
        if not self.in_quiet_hours(moment):
            return moment
        local = moment.astimezone(self.zone)
        day = local.date() if local.time() < self.quiet_end else local.date() + dt.timedelta(1)
        return dt.datetime.combine(day, self.quiet_end, self.zone).astimezone(dt.UTC)
