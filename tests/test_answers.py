"""Residents' short answers: numbers, people, phones, times, yes/no/skip, questions,
places and ratings.

Tables of what residents type or what WeChat voice recognition writes (trailing "。",
full-width digits, Chinese numerals). No test depends on today's date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from catalog.answers import (
    Slot,
    arabic_numerals,
    is_no,
    is_skip,
    is_yes,
    looks_like_address,
    looks_like_question,
    parse_choice,
    parse_people,
    parse_phone,
    parse_rating,
    parse_slot,
    phone_problem,
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


# ----------------------------------------------------------- skip in own words


SKIP_IN_WORDS = [
    # refusing to give it
    "不想留",
    "不留了",
    "不留",
    "不留了吧",
    "不想填",
    "不填了",
    "不想说",
    "我不想说",
    "不方便说",
    "不方便留",
    "不方便",
    "不告诉",
    "不告诉你",
    "保密",
    "手机号保密",
    "不想留电话",
    "电话就不留了",
    "电话先不留了",
    "号码不方便给",
    "暂时不留",
    "不用留了",
    # done with the question
    "不用了",
    "不用了吧",
    "不用了谢谢",
    "不用不用",
    "算了",
    "算了吧",
    "那就算了",
    "算了算了",
    "跳过",
    "跳过吧",
    "下一个",
    "下一步",
    "下一步吧",
    "不需要",
    "就这样",
    "就这样吧啊",
    # having none
    "没有",
    "没有手机",
    "没手机",
    "我没有手机",
    "没有电话",
    "家里没电话",
    "没有别的要求",
    "没什么要补充的",
    "没有了谢谢",
    # with fillers and thanks around it
    "好的，不用了，谢谢",
    "嗯，不想留",
    "不留了。",
    "不想留！",
]


@pytest.mark.parametrize("text", SKIP_IN_WORDS)
def test_is_skip_in_own_words(text: str) -> None:
    assert is_skip(text)
    assert not is_yes(text)


@pytest.mark.parametrize(
    "text",
    [
        # a place that starts like a skip is the address
        "没有电梯的那栋",
        # a skip word followed by the real answer is that answer: the note is kept
        "没有别的要求，就是快点来",
        "不想留电话，打我家座机87654321",
        "没有电",
        # a refusal of the whole thing is no skip of one question
        "算了，不办了",
        "不报了",
        "不登记了",
        # no or unsure, not skip (see is_no)
        "不",
        "不要",
        "不要了",
        "不对",
        "不是",
        "不知道",
        # questions and plain courtesy
        "不留电话怎么联系",
        "我想问一下",
        "好的",
        "谢谢",
        "3栋",
        "",
        "。",
        # a long text is an answer even if it is made of skip words
        "不用了" * 11,
    ],
)
def test_is_skip_keeps_real_answers(text: str) -> None:
    assert not is_skip(text)


# ---------------------------------------------------------------- people in words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # someone else goes, not the resident
        ("就我妈一个人", 1),
        ("就我妈一个人。", 1),
        ("我妈一个人去", 1),
        ("我妈自己去", 1),
        ("就我爸", 1),
        ("老伴", 1),
        ("就老伴", 1),
        ("孙子孙女两个", 2),
        ("孙子孙女俩", 2),
        ("两个孙子", 2),
        ("我爸妈", 2),
        ("父母", 2),
        ("我妈和我爸都去", 2),
        ("爷爷奶奶", 2),
        # the resident and others
        ("我跟我妈", 2),
        ("我和我妈两个", 2),
        ("我带我妈", 2),
        ("老伴和我", 2),
        ("我和老伴自己去", 2),
        ("我和两个孙子", 3),
        ("我跟我妈还有我爸三个人", 3),
        # families
        ("一家三口", 3),
        ("我们一家四口", 4),
        ("我们全家四口人", 4),
        ("三口之家", 3),
        ("老两口", 2),
    ],
)
def test_parse_people_in_words(text: str, expected: int) -> None:
    assert parse_people(text, 20) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我妈两三个",  # a range
        "我和我妈一个人",  # fewer than named
        "孙子孙女一个",
        "我妈说不去了",  # news, not a count
        "我妈不去了",
        "一家人",  # how many is not said
        "全家",
        "家里",
        "我们",
    ],
)
def test_parse_people_in_words_rejects(text: str) -> None:
    assert parse_people(text, 20) is None


def test_parse_people_family_over_the_limit() -> None:
    assert parse_people("我们一家四口", 3) is None
    assert parse_people("我和两个孙子", 2) is None


# ------------------------------------------------------------- phone by voice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("幺三八一二三四五六七八", "13812345678"),
        ("一三八 七七三零 零一二三", "13877300123"),
        ("一三八 7730 零一二三", "13877300123"),
        ("138 七七三零 0123", "13877300123"),
        ("幺三八洞洞幺二三四五六", "13800123456"),
        ("幺三八两三四五六七八九", "13823456789"),
        ("幺三八 两两三四 五拐八九", "13822345789"),
        ("幺三八七七三零零一二两", "13877300122"),
        ("我的手机是幺三八七七三零零一二三", "13877300123"),
        ("１３８ 七七三零 零一二三。", "13877300123"),
        # 两 as a word next to a number stays a word
        ("13812345678两个人", "13812345678"),
        ("拐弯那栋，13812345678", "13812345678"),
    ],
)
def test_parse_phone_spoken(text: str, expected: str) -> None:
    assert parse_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "幺三八七七三零零一二三四",  # the example has 12 digits
        "幺三八七七三零零一二",
        "两两三八七七三零零一二三",
        "洞幺零 一二三四五六七八",
    ],
)
def test_parse_phone_spoken_rejects(text: str) -> None:
    assert parse_phone(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("幺三八七七三零零一二三四", "您说的号码是12位，手机号是11位，请再核对一下。"),
        ("1381234567", "您说的号码是10位，手机号是11位，请再核对一下。"),
        ("138 1234 56789", "您说的号码是12位，手机号是11位，请再核对一下。"),
        ("幺三八七七三零零", "您说的号码是8位，手机号是11位，请再核对一下。"),
        ("440102199001011234", "您说的号码是18位，手机号是11位，请再核对一下。"),
        ("013812345678", "您说的号码是12位，手机号是11位，请再核对一下。"),
        ("我住3栋，电话1381234567", "您说的号码是10位，手机号是11位，请再核对一下。"),
        ("12812345678", "这个号码不像手机号（手机号是1开头的11位数字），请再核对一下。"),
        ("13812345678和13912345678", "您发了不止一个手机号，请只留一个最常用的。"),
        ("+44 7911 123456", "目前只能登记中国大陆的手机号码，请发11位手机号，比如 13812345678。"),
    ],
)
def test_phone_problem_says_what_is_wrong(text: str, expected: str) -> None:
    assert phone_problem(text) == expected


@pytest.mark.parametrize(
    "text",
    ["010-12345678", "0571 8765 4321", "021 1234 5678", "87654321", "洞幺洞 一二三四五六七八"],
)
def test_phone_problem_landline(text: str) -> None:
    assert phone_problem(text).startswith("这像是座机号码")
    assert "手机号码" in phone_problem(text)


@pytest.mark.parametrize("text", ["", "不想留", "没有电话", "我不知道", "。"])
def test_phone_problem_without_digits_asks_for_a_mobile(text: str) -> None:
    assert phone_problem(text) == "这个号码好像不对，请发11位手机号码，比如 13812345678。"


@pytest.mark.parametrize("text", ["13812345678", "幺三八一二三四五六七八", "+86 138 1234 5678"])
def test_phone_problem_none_for_a_good_number(text: str) -> None:
    assert phone_problem(text) == ""


# ------------------------------------------------------------ questions at a prompt


@pytest.mark.parametrize(
    "text",
    [
        "现在是寒假，暑假才有吗？",
        "要带身份证吗",
        "要带身份证么",
        "这个要钱不",
        "几点开始啊",
        "在哪里",
        "在哪儿办",
        "怎么收费",
        "收不收费",
        "有没有人来",
        "是不是要排队",
        "可不可以周末去",
        "多少钱",
        "要多久",
        "谁来修",
        "为啥要电话",
        "咋弄",
        "干什么用的",
        "那暑假呢",
        "修好了没",
        "请问一下",
        "我想问问",
        "能带孩子去？",
        "好不好",
    ],
)
def test_looks_like_question(text: str) -> None:
    assert looks_like_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "3栋2单元",
        "七号楼三单元501",
        "就我一个吧",
        "我和老伴",
        "十几个人",
        "两三个",
        "没什么",
        "没有什么要求",
        "什么都行",
        "没啥",
        "13812345678",
        "张三",
        "王大妈",
        "不知道",
        "我不",
        "我也不",
        "去不了",
        "不不不",
        "好的",
        "一楼",
        "7",
        # a number the resident only doubts
        "3栋？",
        "两个人？",
        "",
        "。",
    ],
)
def test_not_a_question(text: str) -> None:
    assert not looks_like_question(text)


# ------------------------------------------------------------------------ places


@pytest.mark.parametrize(
    "text",
    [
        "3栋2单元",
        "3栋2单元501",
        "七号楼",
        "十二栋三单元",
        "501室",
        "2组",
        "三期",
        "B座",
        "幸福路12号",
        "3-2-501",
        "7",
        "七",
        "501",
        "7号",
        "小区门口",
        "菜市场对面",
        "楼下车棚",
        "阳光花园",
        "东门",
        "老年活动中心",
        "家属院",
        "就在3栋吧",
        "没有电梯的那栋",  # a description residents use for their building
        "3栋？",
        "3栋，电话13812345678",
    ],
)
def test_looks_like_address(text: str) -> None:
    assert looks_like_address(text)


@pytest.mark.parametrize(
    "text",
    [
        "家里灯不亮了",  # a new request
        "3栋的灯坏了",
        "楼上老往我家滴水",
        "我要报修",
        "小区门口有人乱停车",  # a complaint
        "在哪里",  # questions
        "几号楼有活动？",
        "3栋吗",
        "谢谢",
        "你好",
        "5分",
        "明天下午",
        "13812345678",
        "就我一个吧",
        "两个人",
        "一家三口",
        "张三",
        "不想留",
        "138-1234-5678",  # phone numbers are no house numbers
        "010-12345678",
        "四季青",  # a place name, but not one of this community's
        "",
    ],
)
def test_not_an_address(text: str) -> None:
    assert not looks_like_address(text)


@pytest.mark.parametrize(
    ("text", "places", "expected"),
    [
        ("四季青", ["四季青片区", "东湖网格"], True),
        ("我住四季青那边", ["四季青片区"], True),
        ("东湖", ["四季青片区", "东湖网格"], True),
        ("在二组", ["2组"], True),  # Chinese numerals read as digits
        ("四季青片区", ["四季青片区"], True),
        ("西湖", ["四季青片区", "东湖网格"], False),
        ("东", ["东片区"], False),  # a one-character stem is too loose
        ("四季青的灯坏了", ["四季青片区"], False),
    ],
)
def test_looks_like_address_with_the_communitys_places(
    text: str, places: list[str], expected: bool
) -> None:
    assert looks_like_address(text, places) is expected


# ------------------------------------------------------------------------ ratings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5分", 5),
        ("５分", 5),
        ("五分", 5),
        ("给5分", 5),
        ("打五分", 5),
        ("打5分吧", 5),
        ("给师傅打五分", 5),
        ("五星", 5),
        ("5颗星", 5),
        ("五星好评", 5),
        ("给个五星好评", 5),
        ("给您五星", 5),
        ("满分", 5),
        ("给满分", 5),
        ("五分，很满意，谢谢", 5),
        ("⭐⭐⭐⭐", 4),
        ("⭐️⭐️⭐️⭐️⭐️", 5),
        ("★★★", 3),
        ("评分：3", 3),
        ("两分", 2),
        ("一分", 1),
        ("1分", 1),
        ("不满意，一分", 1),
        ("一星", 1),
    ],
)
def test_parse_rating(text: str, expected: int) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "5号楼",
        "五分钟",
        "5分钟以后",
        "十分满意",
        "0分",
        "6星",
        "10分",
        "4.5分",
        "三星半",
        "⭐⭐⭐⭐⭐⭐",
        "5",  # a bare number may be an option, a building or a count
        "五",
        "好评",
        "满意",
        "5分，1分",
        "不给5分",
        "五分钱",
        "",
    ],
)
def test_parse_rating_rejects(text: str) -> None:
    assert parse_rating(text) is None
