"""Recurring schedules in the words staff use: 每天上午10点, 每周五上午10点, 每月1号下午3点半.

Staff choose a schedule in words (or with the console's widgets, which write the same
words); it is stored as a crontab line, as before, so the broadcast job and every
stored value keep working. Every screen shows a stored line in words again
(:func:`describe`), reading what the line actually fires on rather than its text,
so an APScheduler quirk (a weekday number in a crontab counts from Monday) cannot
make the words and the sends disagree.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS_ZH = "一二三四五六日"
CRON_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekdays by name in the stored line: APScheduler and cron agree on names, not numbers."""

_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7}
_DIGITS |= {"八": 8, "九": 9}
_NUMBER = r"[0-9]{1,2}|[零一二两三四五六七八九十]{1,3}"
_PERIODS = {
    "凌晨": 0,
    "早上": 0,
    "早晨": 0,
    "上午": 0,
    "中午": 12,
    "下午": 12,
    "傍晚": 12,
    "晚上": 12,
    "夜里": 12,
}
_TIME = re.compile(
    rf"^(?P<period>{'|'.join(_PERIODS)})?"
    rf"(?:(?P<hh>[0-9]{{1,2}})[:：](?P<mm>[0-9]{{2}})"
    rf"|(?P<h>{_NUMBER})[点时](?:(?P<half>半)|(?P<m>{_NUMBER})分?|整)?)$"
)
_WEEK_PREFIX = re.compile(r"^(?:每个?(?:周|星期|礼拜))")
_DAY_NAMES = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_DAY_NAMES |= {str(n): n - 1 for n in range(1, 8)}


class ScheduleWordsError(ValueError):
    """Words that name no schedule; ``str()`` says why, in Chinese, for staff."""


def _number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)
    if len(text) == 1 and text in _DIGITS:
        return _DIGITS[text]
    raise ScheduleWordsError(f"看不懂“{text}”这个数。")


def _time(text: str) -> tuple[int, int]:
    found = _TIME.match(text)
    if not found:
        raise ScheduleWordsError("请写上几点发，例如 每周五上午10点、每天晚上8点半、每月1号 9:30。")
    if found["hh"] is not None:
        hour, minute = int(found["hh"]), int(found["mm"])
    else:
        hour = _number(found["h"])
        minute = 30 if found["half"] else _number(found["m"]) if found["m"] else 0
    period = found["period"]
    if period and _PERIODS[period] and hour < 12 and not (period == "中午" and hour >= 11):
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ScheduleWordsError("时间不对：小时请在 0 到 23 之间，分钟在 0 到 59 之间。")
    return hour, minute


def _weekdays(text: str) -> tuple[list[int], str]:
    """The weekdays at the start of ``text`` (after 每周), and what follows them."""
    days: list[int] = []
    rest = text
    while rest:
        rest = re.sub(r"^(?:[、,，和及 ]|周|星期|礼拜)+", "", rest)
        if not rest or rest[0] not in _DAY_NAMES:
            break
        if rest[0].isdigit() and re.match(r"^.[0-9:：点时]", rest):
            break  # the time (周五10点), not a day
        first = _DAY_NAMES[rest[0]]
        rest = rest[1:]
        ranged = re.match(r"^(?:至|到|-|~)(?:周|星期|礼拜)?(.)", rest)
        if ranged and ranged[1] in _DAY_NAMES:
            last = _DAY_NAMES[ranged[1]]
            days += list(range(first, last + 1)) if last >= first else []
            rest = rest[ranged.end() :]
        else:
            days.append(first)
    return sorted(set(days)), rest


def parse(words: str) -> str:
    """A schedule in words as a crontab line (minute hour day month weekday).

    Raises :class:`ScheduleWordsError` saying what is missing or wrong.
    """
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", words)).strip().rstrip("。.")
    text = text.replace("的", "")
    day_of_month, day_of_week = "*", "*"
    if found := re.match(r"^(?:每天|每日|天天)", text):
        rest = text[found.end() :]
    elif found := re.match(r"^(?:每个?工作日|工作日)", text):
        day_of_week, rest = "mon-fri", text[found.end() :]
    elif found := _WEEK_PREFIX.match(text):
        days, rest = _weekdays(text[found.end() :])
        if not days:
            raise ScheduleWordsError("请写上每周几，例如 每周五上午10点、每周一、三、五晚上7点。")
        day_of_week = ",".join(CRON_DAYS[d] for d in days)
    elif found := re.match(r"^每个?月", text):
        rest = text[found.end() :]
        dates = []
        while date := re.match(rf"^(?:[、,，和及 ])*({_NUMBER}) ?[号日]", rest):
            dates.append(_number(date[1]))
            rest = rest[date.end() :]
        if not dates:
            raise ScheduleWordsError("请写上每月几号，例如 每月1号上午9点。")
        if any(not 1 <= d <= 31 for d in dates):
            raise ScheduleWordsError("每月几号请写 1 到 31 之间的日子。")
        day_of_month = ",".join(str(d) for d in sorted(set(dates)))
    else:
        raise ScheduleWordsError("请用“每天”“每周几”或“每月几号”加上时间，例如 每周五上午10点。")
    hour, minute = _time(rest.replace(" ", ""))
    return f"{minute} {hour} {day_of_month} * {day_of_week}"


def clock_zh(hour: int, minute: int) -> str:
    """上午10点, 下午3点半, 晚上8点05分, 中午12点."""
    if hour < 6:
        period, shown = "凌晨", hour
    elif hour < 9:
        period, shown = "早上", hour
    elif hour < 12:
        period, shown = "上午", hour
    elif hour < 13:
        period, shown = "中午", hour
    elif hour < 18:
        period, shown = "下午", hour - 12
    else:
        period, shown = "晚上", hour - 12
    if minute == 0:
        return f"{period}{shown}点"
    if minute == 30:
        return f"{period}{shown}点半"
    return f"{period}{shown}点{minute:02d}分"


def describe(cron: str, zone: ZoneInfo) -> str | None:
    """A stored crontab line in words, or None for a line no short words fit (shown
    to staff as 定期 with its next sending times)."""
    fields = cron.split()
    if len(fields) != 5:
        return None
    minute, hour, day_of_month, month, day_of_week = fields
    if not (minute.isdigit() and hour.isdigit()) or month != "*":
        return None
    try:
        trigger = CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError:
        return None
    at = clock_zh(int(hour), int(minute))
    if day_of_month == "*" and day_of_week == "*":
        return f"每天{at}"
    if day_of_month == "*":
        # What the line fires on over a fortnight, not what its text seems to say.
        moment = dt.datetime(2026, 1, 5, tzinfo=zone)  # a Monday
        days: set[int] = set()
        for _ in range(14):
            fire = trigger.get_next_fire_time(None, moment)
            if fire is None:
                return None
            days.add(fire.weekday())
            moment = fire + dt.timedelta(minutes=1)
        if days == set(range(7)):
            return f"每天{at}"
        if days == set(range(5)):
            return f"每个工作日（周一到周五）{at}"
        return "每周" + "、".join(WEEKDAYS_ZH[d] for d in sorted(days)) + at
    if day_of_week == "*" and re.fullmatch(r"[0-9]{1,2}(,[0-9]{1,2})*", day_of_month):
        dates = sorted({int(d) for d in day_of_month.split(",")})
        return "每月" + "、".join(f"{d}号" for d in dates) + at
    return None
