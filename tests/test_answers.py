"""Residents' short answers: numbers, people, phones, times, yes/no/skip.

Tables of what residents type or what WeChat voice recognition writes (trailing "。",
full-width digits, Chinese numerals). No test depends on today's date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.answers import (
    Slot,
    arabic_numerals,
    is_no,
    is_skip,
    is_yes,
    parse_choice,
    parse_people,
    parse_phone,
    parse_slot,
)

TZ = ZoneInfo("Asia/Shanghai")


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


# ------------------------------------------------------------------------- choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("１", 1),
        ("1.", 1),
        ("1、", 1),
        ("1号", 1),
        ("第1个", 1),
        ("第 1 个", 1),
        ("第一个", 1),
        ("第一", 1),
        ("一", 1),
        ("一。", 1),
        ("选1", 1),
        ("选第二个", 2),
        ("2。", 2),
        ("２。", 2),
        ("两", 2),
        ("二号", 2),
        ("要第三个", 3),
        ("我要第三个。", 3),
        ("就第2个吧", 2),
        ("就第２个吧。", 2),
        ("那我选4", 4),
        ("嗯，第四个", 4),
        (" 3 ", 3),
        ("3\n", 3),
        ("第五项", 5),
        ("5", 5),
        ("第十个", 10),
        ("十", 10),
        ("12", 12),
    ],
)
def test_parse_choice_accepts(text: str, expected: int) -> None:
    assert parse_choice(text, 12) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "。",
        "0",
        "零",
        "13",
        "第十三个",
        "13812345678",
        "我想问一下",
        "一个人",
        "一个",
        "两个",
        "选一个",
        "要一个",
        "三号楼",
        "一楼",
        "1.5",
        "1,2",
        "1和2",
        "第一个和第二个",
        "两三个",
        "2点",
        "明天",
        "好的",
        "不要第一个吧？",
        "好，好",
    ],
)
def test_parse_choice_rejects(text: str) -> None:
    assert parse_choice(text, 12) is None


@pytest.mark.parametrize(("text", "count"), [("4", 3), ("第四个", 3), ("1", 0), ("二", 1)])
def test_parse_choice_out_of_range(text: str, count: int) -> None:
    assert parse_choice(text, count) is None


# ------------------------------------------------------------------------- people


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2),
        ("２", 2),
        ("两个人", 2),
        ("两个人。", 2),
        ("两位", 2),
        ("两位老人", 2),
        ("3个", 3),
        ("三个人", 3),
        ("三口人", 3),
        ("一个", 1),
        ("一个人", 1),
        ("1", 1),
        ("就我一个", 1),
        ("就我一个人。", 1),
        ("我自己", 1),
        ("就我自己", 1),
        ("我一个人", 1),
        ("我", 1),
        ("本人", 1),
        ("我和老伴", 2),
        ("我跟老伴儿", 2),
        ("我和我老伴", 2),
        ("我们俩", 2),
        ("咱俩", 2),
        ("俩人", 2),
        ("两口子", 2),
        ("我们老两口", 2),
        ("我们两个", 2),
        ("我和老伴还有孙子", 3),
        ("我带两个孙子", 3),
        ("我和老伴两个人", 2),
        ("我跟老伴俩", 2),
        ("我和老伴三个人", 3),
        ("就我和老伴", 2),
        ("大概三个人", 3),
        ("我们三个。", 3),
        ("一共4个人", 4),
        ("5人", 5),
        ("五人", 5),
        ("十个人", 10),
        ("十二个", 12),
        ("１２个", 12),
        ("就两个吧", 2),
    ],
)
def test_parse_people_accepts(text: str, expected: int) -> None:
    assert parse_people(text, 20) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "零个",
        "两三个",
        "2-3个",
        "好多人",
        "不知道",
        "我和你说",
        "我和你说两个",
        "我和老伴还有孙子两个人",
        "我和老伴一个人",
        "我们",
        "我和孩子们",
        "13812345678",
        "第二个",
        "明天下午",
        "二十一",
        "100",
    ],
)
def test_parse_people_rejects(text: str) -> None:
    assert parse_people(text, 20) is None


@pytest.mark.parametrize(("text", "max_people"), [("6", 5), ("六个人", 5), ("我和老伴", 1)])
def test_parse_people_over_the_limit(text: str, max_people: int) -> None:
    assert parse_people(text, max_people) is None


def test_parse_people_at_the_limit() -> None:
    assert parse_people("五个人", 5) == 5


# -------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "13812345678。",
        "138 1234 5678",
        "138-1234-5678",
        "138.1234.5678",
        "+86 138 1234 5678",
        "+86-13812345678",
        "(+86)13812345678",
        "8613812345678",
        "86 138 1234 5678",
        "008613812345678",
        "１３８１２３４５６７８",
        "１３８ １２３４ ５６７８",
        "我的电话是138 1234 5678",
        "我的电话是13812345678，谢谢",
        "电话：13812345678 两个人",
        "幺三八一二三四五六七八",
        "13812345678，就是13812345678",
    ],
)
def test_parse_phone_accepts(text: str) -> None:
    assert parse_phone(text) == "13812345678"


@pytest.mark.parametrize("prefix", ["13", "14", "15", "16", "17", "18", "19"])
def test_parse_phone_every_mobile_prefix(prefix: str) -> None:
    assert parse_phone(f"{prefix}012345678") == f"{prefix}012345678"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "没有电话",
        "010-12345678",
        "0571 8765 4321",
        "87654321",
        "1381234567",
        "138123456789",
        "138-1234-5678-9",
        "12812345678",
        "11812345678",
        "10012345678",
        "23812345678",
        "+1 4155552671",
        "+44 7911 123456",
        "440102199001011234",
        "13812345678和13912345678",
    ],
)
def test_parse_phone_rejects(text: str) -> None:
    assert parse_phone(text) is None


# -------------------------------------------------------------------------- slots

# Friday 2026-11-27 10:00 in Shanghai. This week: Mon 11-23 … Sun 11-29; next: 11-30 … 12-06.
NOW = at(2026, 11, 27, 10)
SAT_AM = Slot(
    "sat-am",
    datetime(2026, 11, 28, 1, 0, tzinfo=UTC),  # 09:00 in Shanghai
    datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
    "11月28日（周六）上午9:00",
)
SAT_PM = Slot("sat-pm", at(2026, 11, 28, 14, 30), at(2026, 11, 28, 16, 30), "周六下午2:30")
WED_EVE = Slot("wed-eve", at(2026, 12, 2, 19, 30), None, "12月2日（周三）晚上7:30")
DEC5_AM = Slot("dec5-am", at(2026, 12, 5, 9), at(2026, 12, 5, 11), "12月5日（周六）上午9:00")
SLOTS = [SAT_AM, SAT_PM, WED_EVE, DEC5_AM]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # option numbers
        ("1", SAT_AM),
        ("第二个", SAT_PM),
        ("３", WED_EVE),
        ("就第4个吧。", DEC5_AM),
        ("5", None),
        # relative days and parts of the day
        ("明天上午", SAT_AM),
        ("明天下午", SAT_PM),
        ("明天下午。", SAT_PM),
        ("明早", SAT_AM),
        ("明天", "ambiguous"),
        ("后天上午", None),
        ("今天晚上", None),
        ("今晚", None),
        ("大后天", None),
        # weekdays
        ("周六上午", SAT_AM),
        ("星期六", "ambiguous"),
        ("礼拜六下午", SAT_PM),
        ("这周六", "ambiguous"),
        ("这周六上午", SAT_AM),
        ("本周六下午", SAT_PM),
        ("下周六", DEC5_AM),
        ("下个星期六上午", DEC5_AM),
        ("下周三晚上", WED_EVE),
        ("周三", WED_EVE),
        ("星期三晚上", WED_EVE),
        ("周三上午", None),
        ("星期天", None),
        ("下下周六", None),
        ("周末", "ambiguous"),
        ("这周末下午", SAT_PM),
        ("下周末", DEC5_AM),
        ("下周", "ambiguous"),
        ("下周晚上", WED_EVE),
        # calendar dates
        ("12月5号", DEC5_AM),
        ("12月5日上午", DEC5_AM),
        ("12月5日下午", None),
        ("十二月五号。", DEC5_AM),
        ("１２月５日", DEC5_AM),
        ("2026年12月5日", DEC5_AM),
        ("11月28号下午", SAT_PM),
        ("5号", DEC5_AM),
        ("五号上午", DEC5_AM),
        ("28号", "ambiguous"),
        ("28号下午", SAT_PM),
        ("2月30号", None),
        ("3月5号", None),
        # parts of the day and clock times alone
        ("晚上", WED_EVE),
        ("下午", SAT_PM),
        ("上午", "ambiguous"),
        ("中午", None),
        ("9点", "ambiguous"),
        ("明天9点", SAT_AM),
        ("明天上午十点", SAT_AM),
        ("下午两点半", SAT_PM),
        ("明天下午3点", SAT_PM),
        ("14:30", SAT_PM),
        ("晚上7点半", WED_EVE),
        ("明天下午两点以后", SAT_PM),
        ("明天下午五点", None),
        # "N号" is both an option and a day of the month
        ("3号", WED_EVE),  # option 3; no slot on 12-03
        ("2号", "ambiguous"),  # option 2 is Saturday afternoon, but 12-02 has Wednesday's slot
        ("4号", DEC5_AM),  # option 4; no slot on 12-04
        ("第2号", "ambiguous"),
        # refusals and noise
        ("明天下午不行", None),
        ("周六不方便", None),
        ("不是周六，是周日", None),
        ("不要第一个", None),
        ("我想问一下", None),
        ("随便", None),
        ("", None),
    ],
)
def test_parse_slot(text: str, expected: Slot | str | None) -> None:
    assert parse_slot(text, SLOTS, NOW, TZ) == expected


def test_parse_slot_reads_dates_in_the_given_timezone() -> None:
    # 2026-11-27 18:00 UTC is already Saturday 02:00 in Shanghai: "明天" is Sunday there.
    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert parse_slot("今天上午", SLOTS, now, TZ) == SAT_AM
    assert parse_slot("明天", SLOTS, now, TZ) is None


def test_parse_slot_weekday_today_counts_while_a_slot_is_ahead() -> None:
    saturday_morning = at(2026, 11, 28, 8)
    assert parse_slot("周六上午", SLOTS, saturday_morning, TZ) == SAT_AM
    assert parse_slot("周六", SLOTS, saturday_morning, TZ) == "ambiguous"
    assert parse_slot("今天", SLOTS, saturday_morning, TZ) == "ambiguous"


def test_parse_slot_weekday_today_passed_means_next_week() -> None:
    saturday_noon = at(2026, 11, 28, 12)
    assert parse_slot("周六上午", SLOTS, saturday_noon, TZ) == DEC5_AM
    assert parse_slot("周六下午", SLOTS, saturday_noon, TZ) == SAT_PM
    assert parse_slot("周六", SLOTS, saturday_noon, TZ) == SAT_PM


def test_parse_slot_next_week_from_sunday() -> None:
    sunday = at(2026, 11, 29, 9)
    slots = [WED_EVE, DEC5_AM]
    assert parse_slot("下周三", slots, sunday, TZ) == WED_EVE
    assert parse_slot("周三", slots, sunday, TZ) == WED_EVE
    assert parse_slot("下周六", slots, sunday, TZ) == DEC5_AM
    assert parse_slot("这周三", slots, sunday, TZ) is None  # 11-25, already past


def test_parse_slot_dates_roll_into_next_month_and_year() -> None:
    new_year = Slot("jan3", at(2027, 1, 3, 10), None, "1月3日上午10:00")
    now = at(2026, 12, 30, 10)
    assert parse_slot("1月3号", [new_year], now, TZ) == new_year
    assert parse_slot("3号", [new_year], now, TZ) == new_year
    assert parse_slot("一月三日上午", [new_year], now, TZ) == new_year
    assert parse_slot("12月3号", [new_year], now, TZ) is None


def test_parse_slot_option_number_wins_when_the_date_finds_nothing() -> None:
    slots = [SAT_AM, SAT_PM]
    assert parse_slot("1号", slots, NOW, TZ) == SAT_AM
    assert parse_slot("2号", slots, NOW, TZ) == SAT_PM


def test_parse_slot_date_wins_when_the_number_is_no_option() -> None:
    assert parse_slot("28号上午", SLOTS, NOW, TZ) == SAT_AM
    assert parse_slot("5号", [*SLOTS[:2], DEC5_AM], NOW, TZ) == DEC5_AM


def test_parse_slot_noon_and_late_evening() -> None:
    noon = Slot("noon", at(2026, 11, 28, 12), None, "中午12点")
    late = Slot("late", at(2026, 11, 28, 20), None, "晚上8点")
    slots = [SAT_AM, noon, SAT_PM, late]
    assert parse_slot("明天中午", slots, NOW, TZ) == noon
    assert parse_slot("明天中午12点", slots, NOW, TZ) == noon
    assert parse_slot("明天晚上", slots, NOW, TZ) == late
    assert parse_slot("明晚8点", slots, NOW, TZ) == late
    assert parse_slot("明天夜里", slots, NOW, TZ) == late
    assert parse_slot("明天下午", slots, NOW, TZ) == "ambiguous"


def test_parse_slot_no_slots() -> None:
    assert parse_slot("1", [], NOW, TZ) is None
    assert parse_slot("明天下午", [], NOW, TZ) is None


# ------------------------------------------------------------------- yes, no, skip

YES = [
    "确认",
    "确定",
    "是",
    "是的",
    "对",
    "好",
    "好的",
    "可以",
    "行",
    "嗯",
    "没问题",
    "提交",
    "ok",
    "OK",
    "Ok",
    "ＯＫ",
    "好的。",
    "确认。",
    "是的！",
    "对对对",
    "嗯嗯",
    "好的好的",
    "可以可以",
    "好的，提交",
    "嗯，可以",
    "可以了",
    "没错",
    "👌",
]
NO = [
    "不",
    "不是",
    "不对",
    "不要",
    "不用了",
    "重新填",
    "错了",
    "否",
    "不对。",
    "不是的",
    "不行",
    "不不不",
    "嗯，不对",
    "填错了",
    "重填",
]
SKIP = [
    "没有",
    "无",
    "跳过",
    "不用",
    "没了",
    "没有了",
    "就这样",
    "略",
    "没有。",
    "没有了。",
    "就这样吧",
    "没什么",
    "嗯，没有",
    "暂无",
    "没有没有",
    "没事",
]
NEITHER = [
    "",
    "。",
    "1",
    "１",
    "2",
    "0",
    "确认一下地址",
    "好像不对",
    "我想问一下",
    "是不是",
    "对了，我还想问",
    "可以吗？",
    "不知道",
    "明天下午",
    "13812345678",
    "okay吗",
    "好的，但是电话错了",
]


@pytest.mark.parametrize("text", YES)
def test_is_yes(text: str) -> None:
    assert is_yes(text)
    assert not is_no(text)


@pytest.mark.parametrize("text", NO)
def test_is_no(text: str) -> None:
    assert is_no(text)
    assert not is_yes(text)


@pytest.mark.parametrize("text", SKIP)
def test_is_skip(text: str) -> None:
    assert is_skip(text)
    assert not is_yes(text)


@pytest.mark.parametrize("text", NEITHER)
def test_neither_yes_nor_no_nor_skip(text: str) -> None:
    assert not is_yes(text)
    assert not is_no(text)
    assert not is_skip(text)


@pytest.mark.parametrize("text", ["1", "2", "１", "一", "第一个"])
def test_digits_are_not_yes(text: str) -> None:
    assert not is_yes(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("七栋三单元", "7栋3单元"),
        ("十二栋", "12栋"),
        ("二十一号楼", "21号楼"),
        ("7栋", "7栋"),
        ("东西巷", "东西巷"),
    ],
)
def test_arabic_numerals(text: str, expected: str) -> None:
    assert arabic_numerals(text) == expected
