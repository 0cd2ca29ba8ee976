"""A clock tests move by hand (the service reads the time only through its clock)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self._now = start.astimezone(dt.UTC)

    @classmethod
    def at(cls, text: str) -> FakeClock:
        """``FakeClock.at("2026-12-07 10:00")``: local Shanghai time."""
        return cls(dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI))

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)

    def set(self, text: str) -> None:
        self._now = dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(dt.UTC)
