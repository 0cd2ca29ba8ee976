"""Understand residents' short answers to the bot's questions.

Pure, synchronous functions, no I/O. Answers come typed or from WeChat voice
recognition, which adds a trailing "。" and may write numbers as full-width digits or
Chinese numerals; many users are elderly and answer in everyday words
("就第二个吧", "我和老伴", "明天下午"). Every parser returns None (or False) when it
is not sure, so the caller can simply ask again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from catalog.normalize import compact, half_width, trimmed, words_only

BAD_PHONE = "这个号码好像不对，请发11位手机号码，比如 13812345678。"
"""The reply to a phone answer with no digits in it (shown to residents)."""

__all__ = [
    "Slot",
    "arabic_numerals",
    "is_no",
    "is_skip",
    "is_yes",
    "looks_like_address",
    "looks_like_question",
    "parse_choice",
    "parse_people",
    "parse_phone",
    "parse_rating",
    "parse_slot",
    "phone_problem",
]


# --------------------------------------------------------------------------- text


_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "仨": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}

# A number as residents say it: ASCII digits (after NFKC) or Chinese numerals up to 99.
_NUM = r"(?:\d{1,3}|[一二两三四五六七八九]?十[一二三四五六七八九]?|[零〇一二两俩三仨四五六七八九])"


def _to_int(token: str) -> int | None:
    """Read a number token: "3" → 3, "三" → 3, "十二" → 12, "二十" → 20; else None."""
    if token.isdigit():
        return int(token)
    if len(token) == 1 and token in _CN_DIGITS:
        return _CN_DIGITS[token]
    match = re.fullmatch(r"([一二两三四五六七八九]?)十([一二三四五六七八九]?)", token)
    if match is None:
        return None
    tens, ones = match.groups()
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def arabic_numerals(text: str) -> str:
    """Chinese numerals up to 99 written as digits (七栋 → 7栋, 十二栋 → 12栋); other
    text unchanged. For comparing a building or an address as typed or as spoken."""

    def convert(found: re.Match[str]) -> str:
        word = found[0]
        if "十" in word:
            return str(_to_int(word))
        return "".join(str(_CN_DIGITS[c]) for c in word)

    return re.sub(
        r"[一二两三四五六七八九]?十[一二三四五六七八九]?|[零〇一二两俩三仨四五六七八九]+",
        convert,
        text,
    )


# Soft words around an answer: "嗯，就第二个吧", "那我选3".
_LEAD = r"(?:(?:嗯|额|呃|那么|那|好|就|还是|我|我们)[,、]?)*"
_TAIL = r"(?:吧|啊|呀|哈|哦|噢|呢|的|了|嘞|就行|就好|好了|可以)*"


# ------------------------------------------------------------------------ choices


_CHOICE_RE = re.compile(
    rf"{_LEAD}(?:想要|要|选择|选项|选|挑|是|序号|编号)?"
    rf"(?:第(?P<ordinal>{_NUM})(?:个|号|项|条|种|位)?|(?P<number>{_NUM})(?:号|项|条)?)"
    rf"{_TAIL}"
)


def parse_choice(text: str, count: int) -> int | None:
    """Which of `count` numbered options (1-based) the resident picked, or None.

    Accepts a bare number ("1", "１", "一", "两", "2。", "1."), "N号", the ordinal
    "第N(个)" and the same after 选/要 ("选1", "要第三个", "就第2个吧"). "N个" without
    第 is a quantity, not a choice ("一个人", "选一个"), so it is not accepted.
    """
    match = _CHOICE_RE.fullmatch(compact(text))
    if match is None:
        return None
    value = _to_int(match["ordinal"] or match["number"])
    if value is None or not 1 <= value <= count:
        return None
    return value


# ------------------------------------------------------------------------- people


_ONE_RE = re.compile(
    r"(?:就|只有|只|就只有|光)?(?:我|本人|自己)(?:自己)?(?:一个人|一个|一人|一位|1个人|1个|1人)?"
    rf"{_TAIL}"
)
_COUPLE_RE = re.compile(
    rf"(?:我们|咱们|我|咱)?(?:两口子|老两口|夫妻俩|夫妻两个|夫妻二人|俩口子){_TAIL}"
)
_ABOUT = r"(?:一共|总共|共|就|有|只有|大概|大约|差不多|估计)"
_COUNT_RE = re.compile(
    rf"(?:{_ABOUT}|我们|咱们|我们家|咱家|我家|家里|我|咱)*(?:是|有)?"
    rf"(?P<n>{_NUM})(?:个人|个|位|名|口人|口|人)?(?:老人|大人|人)?(?:左右)?{_TAIL}"
)
# "我和老伴", "我跟孙子", "我带两个孙子": the resident plus the people named.
_PERSON = (
    r"(?:老伴儿?|爱人|老婆|老公|媳妇儿?|妻子|丈夫|先生|太太|老头子?|老太太?|老太婆|"
    r"儿子|女儿|闺女|孙子|孙女|外孙女?|孩子|小孩|儿媳妇?|女婿|妈妈?|爸爸?|母亲|父亲|"
    r"老母亲|老父亲|哥哥?|姐姐?|弟弟?|妹妹?|朋友|邻居|保姆|护工|阿姨|家人|亲戚|"
    r"爷爷|奶奶|外公|外婆|姥姥|姥爷|公公|婆婆|岳父|岳母|丈母娘|老丈人|侄子|侄女|"
    r"外甥女?|老娘|老爹|老爷子|老太爷|同事)"
)
_COMPANION = rf"(?:(?P<n>{_NUM})(?:个|位|名))?(?:我的|我|我家|家里)?{_PERSON}"
_WITH = r"(?:和|跟|与|带着|带|还有|加上|加|、|,)"
_COMPANIONS_RE = re.compile(rf"(?:就|只有)?我{_WITH}(?P<rest>.+?){_TAIL}")
# "我和老伴两个人", "我跟老伴俩": the total is said at the end.
_COMPANIONS_COUNT_RE = re.compile(
    rf"(?:就|只有)?我{_WITH}(?P<rest>.+?){_ABOUT}?"
    rf"(?P<n>{_NUM})(?:个人|个|位|名|口人|口|人)?{_TAIL}"
)


def _count_companions(rest: str) -> int | None:
    total = 0
    for part in re.split(_WITH, rest):
        match = re.fullmatch(_COMPANION, part)
        if match is None:
            return None
        many = _to_int(match["n"]) if match["n"] else 1
        if not many:
            return None
        total += many
    return total


# "一家三口", "我们全家四口人", "三口之家".
_FAMILY_RE = re.compile(
    rf"(?:我们|咱们|我们家|咱家|我家|我|咱)?(?:是|就是)?(?:一家|全家)(?P<n>{_NUM})口人?{_TAIL}"
    rf"|(?P<m>{_NUM})口之家{_TAIL}"
)
# People named one after another, with or without 和/跟 between them: "我妈", "孙子孙女",
# "我和我妈", "我爸我妈". The resident counts when they name themselves.
_NAMED_ONE = re.compile(rf"(?:(?P<n>{_NUM})(?:个|位|名))?(?:我的|我|我家|家里)?{_PERSON}")
_NAMED_PAIR = re.compile(r"(?:我的|我|我家|家里)?(?:爸妈|爹妈|父母|双亲|公婆|岳父母|老爸老妈)")
_NAMED_SELF = re.compile(r"我自己|我本人|本人|自己|我")
_NAMED_LEAD = re.compile(r"(?:就只有|只有|就是|就|只|光|是)?")
_NAMED_WITH = re.compile(_WITH)
# After the names: the total ("两个", "俩"), "自己"/"一起", a verb of going, particles.
_NAMED_AFTER = re.compile(
    rf"(?:自己|单独)?(?:{_ABOUT}?(?P<n>{_NUM})(?:个人|个|位|名|口人|口|人)?|(?P<pair>俩))?"
    rf"(?:自己|单独|一起|一块儿?)?(?:都|也)?(?:去|来|参加|报名|过去|过来)?{_TAIL}"
)


def _count_named(s: str) -> int | None:
    """People named in a row and an optional total ("就我妈一个人" → 1, "我和两个孙子" → 3).

    Names are read greedily from the left ("我妈" is one person, the resident's mother,
    not the resident and a mother). A total said after the names wins when it leaves room
    for everyone named; a smaller total is a contradiction → None.
    """
    lead = _NAMED_LEAD.match(s)
    pos = lead.end() if lead else 0
    named = 0
    while True:
        if named:
            joined = _NAMED_WITH.match(s, pos)
            if joined is not None:
                pos = joined.end()
        pair = _NAMED_PAIR.match(s, pos)
        one = _NAMED_ONE.match(s, pos)
        if pair is not None and (one is None or pair.end() >= one.end()):
            named, pos = named + 2, pair.end()
        elif one is not None:
            many = _to_int(one["n"]) if one["n"] else 1
            if not many:
                return None
            named, pos = named + many, one.end()
        elif (
            (me := _NAMED_SELF.match(s, pos)) is not None
            and not s.startswith("们", me.end())  # "我们": how many is not said
            and not (named and me[0] == "自己")  # "我和老伴自己去": no one more
        ):
            named, pos = named + 1, me.end()
        else:
            break
    if not named:
        return None
    after = _NAMED_AFTER.fullmatch(s, pos)
    if after is None:
        return None
    total = 2 if after["pair"] else _to_int(after["n"]) if after["n"] else None
    if total is None:
        return named
    return total if total >= named else None


def parse_people(text: str, max_people: int) -> int | None:
    """How many people the resident means, within 1..max_people, or None.

    "2", "两位", "三个人", "5人", "十二个" → the number; "就我一个", "我自己" → 1;
    "我和老伴", "我们俩", "两口子" → 2; "我和老伴还有孙子" → 3. Other people named
    without the resident count alone: "就我妈一个人", "我妈一个人去", "就我爸" → 1,
    "孙子孙女两个", "我爸妈" → 2; with the resident: "我跟我妈", "我带我妈" → 2,
    "我和两个孙子" → 3. Families: "一家三口", "我们一家四口" → 3, 4. Ranges ("两三个"),
    a total smaller than the people named, and anything else → None.
    """
    s = compact(text)
    count: int | None = None
    if _ONE_RE.fullmatch(s):
        count = 1
    elif _COUPLE_RE.fullmatch(s):
        count = 2
    elif (match := _COUNT_RE.fullmatch(s)) is not None:
        count = _to_int(match["n"])
    elif (match := _COMPANIONS_COUNT_RE.fullmatch(s)) is not None:
        # The total said wins if it leaves room for everyone named ("我和老伴三个人").
        others, total = _count_companions(match["rest"]), _to_int(match["n"])
        count = total if others is not None and total is not None and total > others else None
    elif (match := _COMPANIONS_RE.fullmatch(s)) is not None:
        others = _count_companions(match["rest"])
        count = None if others is None else 1 + others
    elif (match := _FAMILY_RE.fullmatch(s)) is not None:
        count = _to_int(match["n"] or match["m"])
    if count is None:
        count = _count_named(s)
    if count is None or not 1 <= count <= max_people:
        return None
    return count


# -------------------------------------------------------------------------- phone


# How voice recognition writes spoken digits: 幺 is 1 and 洞 is 0 as people read numbers
# aloud. 两 (2) and 拐 (7) are words too ("两个人", "拐弯"), so they count as digits only
# next to another digit.
_SPOKEN_DIGITS = str.maketrans("零〇洞一幺二三四五六七八九", "0001123456789")
# 两 and 拐 before a digit, or after one at the end of a word ("…七八两", but not the
# "两个人" in "13812345678两个人").
_SPOKEN_NEXT_TO_DIGIT = re.compile(r"[两拐]+(?=\d)|(?<=\d)[两拐]+(?!\w)")
_NEXT_TO_DIGIT = str.maketrans("两拐", "27")
_SEPARATOR = r"[\s\-–—.·]+"
_DIGIT_CHAIN = re.compile(rf"\+?\s*\d+(?:{_SEPARATOR}\d+)*")
_MOBILE_RE = re.compile(r"1[3-9]\d{9}")


def _mobile(digits: str, international: bool) -> str | None:
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    else:
        if international:
            return None  # another country's number
    return digits if _MOBILE_RE.fullmatch(digits) else None


def _mobiles_in(chain: str) -> set[str]:
    """Mobiles in a chain of digit groups ("+86 138-1234-5678", "13812345678 2").

    Whole groups only; a span may leave out groups only where a space divides them, so
    "138-1234-5678-9" has no mobile but "13812345678 2" has one.
    """
    international = chain.startswith("+")
    pieces = re.split(rf"({_SEPARATOR})", chain.lstrip("+").strip())
    groups, separators = pieces[::2], pieces[1::2]
    apart = [True, *(sep.isspace() for sep in separators), True]  # before each group, and end
    found: set[str] = set()
    for first in range(len(groups)):
        for last in range(first + 1, len(groups) + 1):
            if apart[first] and apart[last]:
                mobile = _mobile("".join(groups[first:last]), international and first == 0)
                if mobile is not None:
                    found.add(mobile)
    return found


def _phone_text(text: str) -> str:
    """The text with full-width and spoken digits as ASCII digits ("幺三八两" → "1382")."""
    s = half_width(text).translate(_SPOKEN_DIGITS)
    return _SPOKEN_NEXT_TO_DIGIT.sub(lambda m: m[0].translate(_NEXT_TO_DIGIT), s)


def parse_phone(text: str) -> str | None:
    """A mainland China mobile number in the text, as 11 digits, or None.

    Spaces, dashes and dots between digit groups, a "+86"/"86"/"0086" prefix,
    full-width digits, Chinese digits as voice input writes them ("幺三八…", 洞 for 0,
    两 and 拐 for 2 and 7 next to other digits, mixed with Arabic digits: "一三八 7730
    零一二三") and words around the number are fine. Landlines, 10 or 12 digits, or two
    different mobiles → None; `phone_problem` says which.
    """
    found = _all_mobiles(_phone_text(text))
    return found.pop() if len(found) == 1 else None


def _all_mobiles(s: str) -> set[str]:
    found: set[str] = set()
    for chain in _DIGIT_CHAIN.finditer(s):
        found |= _mobiles_in(chain.group(0))
    return found


_MOBILE_START = re.compile(r"1[3-9]")
_LANDLINE_HINT = "这像是座机号码。为了方便联系您，请留一个手机号码（11位，1开头）。"


def phone_problem(text: str) -> str:
    """What is wrong with a phone answer `parse_phone` refused, as a reply to the resident.

    So the resident learns what to fix instead of reading the same sentence again: the
    digit count when it is not 11 (spoken digits counted too: "幺三八七七三零零一二三四"
    has 12), a landline ("010-12345678", "0571 8765 4321", "87654321"), a foreign
    number, two different mobiles, 11 digits that are no mobile; with no digits at all,
    the generic request for an 11-digit mobile. Returns "" for an answer `parse_phone`
    accepts, so `if problem := phone_problem(text)` reads naturally.
    """
    s = _phone_text(text)
    mobiles = _all_mobiles(s)
    if len(mobiles) == 1:
        return ""
    if len(mobiles) > 1:
        return "您发了不止一个手机号，请只留一个最常用的。"
    chains = [chain.group(0) for chain in _DIGIT_CHAIN.finditer(s)]
    if not chains:
        return BAD_PHONE
    chain = max(chains, key=lambda c: sum(ch.isdigit() for ch in c))
    digits = re.sub(r"\D", "", chain)
    if chain.startswith("+") and not digits.startswith("86"):
        return "目前只能登记中国大陆的手机号码，请发11位手机号，比如 13812345678。"
    for prefix in ("0086", "86"):
        if len(digits) > 11 and digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    if digits.startswith("0") and 10 <= len(digits) <= 12 and not _MOBILE_START.match(digits, 1):
        return _LANDLINE_HINT  # area code and number: "010-12345678", "0571 8765 4321"
    if len(digits) in (7, 8) and digits[0] not in "01":
        return _LANDLINE_HINT  # local number without the area code: "87654321"
    if len(digits) != 11:
        return f"您说的号码是{len(digits)}位，手机号是11位，请再核对一下。"
    return "这个号码不像手机号（手机号是1开头的11位数字），请再核对一下。"


# -------------------------------------------------------------------------- slots


@dataclass(frozen=True)
class Slot:
    """One appointment time offered to the resident; `starts_at` is timezone-aware."""

    key: str
    starts_at: datetime
    ends_at: datetime | None
    label: str


# Parts of the day as [start hour, end hour) of a slot's local start time.
_PARTS: dict[str, tuple[int, int]] = {
    "凌晨": (0, 6),
    "上午": (0, 12),
    "早上": (0, 12),
    "早晨": (0, 12),
    "清早": (0, 12),
    "一早": (0, 12),
    "上半天": (0, 12),
    "中午": (11, 13),
    "下午": (12, 18),
    "午后": (12, 18),
    "下半天": (12, 18),
    "傍晚": (17, 20),
    "晚上": (18, 24),
    "夜里": (18, 24),
    "夜间": (18, 24),
    "晚间": (18, 24),
}

_RELATIVE_DAYS = {
    "今天": 0,
    "今日": 0,
    "今儿个": 0,
    "今儿": 0,
    "明天": 1,
    "明日": 1,
    "明儿个": 1,
    "明儿": 1,
    "后天": 2,
    "后日": 2,
    "大后天": 3,
}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_WEEKDAYS.update({str(n): n - 1 for n in range(1, 8)})

_WEEK = r"(?:周|星期|礼拜)"
_THIS = r"(?:这个|这|本)"
_NEXT = r"(?:下下个|下下|下个|下)"
_DATE_TOKEN = (
    rf"(?P<rel>{'|'.join(sorted(_RELATIVE_DAYS, key=len, reverse=True))})"
    rf"|(?P<wq>{_THIS}|{_NEXT})?{_WEEK}(?P<wd>[一二三四五六日天七1-7])"
    rf"|(?P<weq>{_THIS}|{_NEXT})?(?:周末|礼拜末)"
    rf"|(?P<wk>{_THIS}|{_NEXT}){_WEEK}"
    rf"|(?P<m>{_NUM})月(?:份)?(?P<md>{_NUM})(?:号|日)?"
    rf"|(?P<d>{_NUM})(?:号|日)"
)
_PART_TOKEN = rf"(?P<part>{'|'.join(sorted(_PARTS, key=len, reverse=True))})"
_CLOCK_TOKEN = (
    r"(?P<ch>\d{1,2}):(?P<cm>\d{2})"
    # Not "早一点" / "晚一点" (a bit earlier / later).
    rf"|(?<![早晚快慢多少有差])(?P<h>{_NUM})(?:点钟|点|时)"
    rf"(?:(?P<half>半)|(?P<quarter>一刻|三刻)|(?P<min>{_NUM})分?)?"
)
_BOUND = r"(?P<bound>以后|之后|以前|之前)?"
_SLOT_TOKENS = re.compile(rf"{_DATE_TOKEN}|{_PART_TOKEN}|(?:{_CLOCK_TOKEN}){_BOUND}")
_NEGATION = re.compile(r"不行|不可以|不方便|没空|没时间|不要|不能|不去|不了|不在|不是|除了")


@dataclass(frozen=True)
class _DateOption:
    """Dates a phrase can mean; `ahead_only`: only slots that have not started count."""

    dates: frozenset[date]
    ahead_only: bool = False


@dataclass
class _Wanted:
    """One "when" the resident named: dates (tried in order), parts of day, clock times."""

    options: list[_DateOption] | None = None  # None: any date
    parts: set[str] = field(default_factory=set)
    clocks: list[tuple[int, int, str | None]] = field(default_factory=list)


def _expand_spoken(s: str) -> str:
    """Spell out short forms: "今晚" → "今天晚上", "明早" → "明天早上"."""
    s = re.sub(r"(今|明|后)晚(?:上)?", r"\1天晚上", s)
    return re.sub(r"(今|明)早(?:上|晨)?", r"\1天早上", s)


def _month_day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _date_options(match: re.Match[str], today: date) -> list[_DateOption] | None:
    """The dates a date phrase means, relative to `today`; None if it is no real date."""
    monday = today - timedelta(days=today.weekday())
    if match["rel"]:
        return [_DateOption(frozenset({today + timedelta(days=_RELATIVE_DAYS[match["rel"]])}))]
    if match["wd"]:
        weekday = _WEEKDAYS[match["wd"]]
        qualifier = match["wq"]
        if qualifier is None:
            ahead = (weekday - today.weekday()) % 7
            day = today + timedelta(days=ahead)
            if ahead == 0:  # today, if a slot is still ahead; else a week later
                return [
                    _DateOption(frozenset({day}), ahead_only=True),
                    _DateOption(frozenset({day + timedelta(days=7)})),
                ]
            return [_DateOption(frozenset({day}))]
        weeks = _weeks_ahead(qualifier)
        return [_DateOption(frozenset({monday + timedelta(days=7 * weeks + weekday)}))]
    if match.group(0).endswith(("周末", "礼拜末")):
        weeks = _weeks_ahead(match["weq"]) if match["weq"] else 0
        weekend = {monday + timedelta(days=7 * weeks + n) for n in (5, 6)}
        return [_DateOption(frozenset(d for d in weekend if d >= today))]
    if match["wk"]:
        weeks = _weeks_ahead(match["wk"])
        week = {monday + timedelta(days=7 * weeks + n) for n in range(7)}
        return [_DateOption(frozenset(d for d in week if d >= today))]
    if match["m"]:
        month, day_of_month = _to_int(match["m"]), _to_int(match["md"])
        if month is None or day_of_month is None:
            return None
        found = _month_day(today.year, month, day_of_month)
        if found is not None and found < today:
            found = _month_day(today.year + 1, month, day_of_month)
        return None if found is None else [_DateOption(frozenset({found}))]
    day_of_month = _to_int(match["d"])
    if day_of_month is None:
        return None
    found = _month_day(today.year, today.month, day_of_month)
    if found is None or found < today:
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        found = _month_day(year, month, day_of_month)
    return None if found is None else [_DateOption(frozenset({found}))]


def _weeks_ahead(qualifier: str) -> int:
    return 2 if qualifier.startswith("下下") else 1 if qualifier.startswith("下") else 0


def _clock(match: re.Match[str]) -> tuple[int, int] | None:
    if match["ch"]:
        hour, minute = int(match["ch"]), int(match["cm"])
    else:
        parsed = _to_int(match["h"])
        if parsed is None:
            return None
        hour = parsed
        if match["half"]:
            minute = 30
        elif match["quarter"]:
            minute = 15 if match["quarter"] == "一刻" else 45
        elif match["min"]:
            minute = _to_int(match["min"]) or 0
        else:
            minute = 0
    if not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    return hour, minute


def _read_when(s: str, today: date) -> list[_Wanted] | None:
    """What the resident said about the time: [] if nothing, None if a date is impossible."""
    wanted: list[_Wanted] = []
    loose = _Wanted()  # parts and clocks said before any date
    for match in _SLOT_TOKENS.finditer(s):
        if match["part"]:
            (wanted[-1] if wanted else loose).parts.add(match["part"])
        elif match["ch"] or match["h"]:
            clock = _clock(match)
            if clock is None:
                return None
            (wanted[-1] if wanted else loose).clocks.append((*clock, match["bound"]))
        else:
            options = _date_options(match, today)
            if options is None:
                return None
            wanted.append(_Wanted(options=options))
    if not wanted:
        return [loose] if loose.parts or loose.clocks else []
    wanted[0].parts |= loose.parts
    wanted[0].clocks = loose.clocks + wanted[0].clocks
    return wanted


def _clock_hours(hour: int, parts: set[str]) -> set[int]:
    """24-hour readings of "N点": "下午3点" → 15, "上午9点" → 9, "3点" → 3 or 15."""
    if hour >= 12:
        return {hour}
    readings = {hour, hour + 12}
    if parts:
        # A part's end hour counts here: "下午6点" is 18:00, "中午1点" is 13:00.
        fitting = {h for h in readings for p in parts if _PARTS[p][0] <= h <= _PARTS[p][1]}
        return fitting or {hour}
    return readings


def _clock_fits(wanted: _Wanted, slot: Slot, tz: ZoneInfo) -> bool:
    """Whether the slot is at a clock time the resident said ("3点" inside 14:30-16:30 fits)."""
    if not wanted.clocks:
        return True
    local = slot.starts_at.astimezone(tz)
    end = slot.ends_at.astimezone(tz) if slot.ends_at is not None else None
    start = (local.hour, local.minute)
    for hour, minute, bound in wanted.clocks:
        for reading in _clock_hours(hour, wanted.parts):
            said = (reading, minute)
            if bound in ("以后", "之后"):
                fits = start >= said
            elif bound in ("以前", "之前"):
                fits = start < said
            elif end is None or reading >= 24:
                fits = start == said
            else:
                moment = datetime.combine(local.date(), time(reading, minute), tzinfo=local.tzinfo)
                fits = local <= moment < end
            if fits:
                return True
    return False


def _part_fits(wanted: _Wanted, local: datetime) -> bool:
    if not wanted.parts:
        return True
    return any(_PARTS[part][0] <= local.hour < _PARTS[part][1] for part in wanted.parts)


def _matching(wanted: _Wanted, slots: Sequence[Slot], now: datetime, tz: ZoneInfo) -> list[Slot]:
    def fits(slot: Slot) -> bool:
        local = slot.starts_at.astimezone(tz)
        return _part_fits(wanted, local) and _clock_fits(wanted, slot, tz)

    candidates = [slot for slot in slots if fits(slot)]
    if wanted.options is None:
        return candidates
    for option in wanted.options:
        found = [
            slot
            for slot in candidates
            if slot.starts_at.astimezone(tz).date() in option.dates
            and (not option.ahead_only or slot.starts_at > now)
        ]
        if found:
            return found
    return []


def _unique(found: Iterable[Slot]) -> list[Slot]:
    unique: list[Slot] = []
    for slot in found:
        if slot not in unique:
            unique.append(slot)
    return unique


def parse_slot(
    text: str, slots: Sequence[Slot], now: datetime, tz: ZoneInfo
) -> Slot | Literal["ambiguous"] | None:
    """Which of the offered `slots` (listed to the resident as 1..n) the answer picks.

    The answer may be an option number (see `parse_choice`) or a day and time:
    "明天下午", "周六上午", "下周三晚上", "12月5日上午", "5号", "今晚", "下午两点半".
    Dates are read in `tz` relative to `now`. One matching slot → that slot; several →
    "ambiguous"; none, a refusal ("明天不行") or an impossible date → None.

    "N号" is both an option number and a day of the month. When both readings find a
    slot and the slots differ, the answer is "ambiguous"; otherwise the reading that
    finds a slot wins.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    s = _expand_spoken(compact(text))
    choice = parse_choice(text, len(slots))
    chosen = slots[choice - 1] if choice is not None else None
    if _NEGATION.search(s):
        return None
    wanted = _read_when(s, now.astimezone(tz).date())
    if not wanted:  # nothing about the time, or an impossible date
        return chosen
    found = _unique(slot for w in wanted for slot in _matching(w, slots, now, tz))
    if chosen is not None:
        if not found or found == [chosen]:
            return chosen
        return "ambiguous"
    if not found:
        return None
    return found[0] if len(found) == 1 else "ambiguous"


# ------------------------------------------------------------------- yes, no, skip


_YES = frozenset(
    """
    确认 确定 是 是的 是啊 是滴 对 对的 对啊 对呀 对了 好 好的 好啊 好呀 好滴 好嘞 好吧 嗯 嗯嗯
    嗯呢 嗯啊 可以 可以的 可以了 行 行的 行啊 行吧 中 成 没问题 没错 正确 同意 提交 确认提交
    确定提交 确认无误 就这样提交 ok okay 好ok y yes 👌 👍
    """.split()
)
_NO = frozenset(
    """
    不 不是 不是的 不对 不对的 不要 不用 不用了 不行 不可以 不好 不确认 不提交 不同意 不需要 否
    错了 错 有错 不对了 写错了 填错了 说错了 重新填 重填 重新填写 重新来 重来 重新输入 要改
    我要改 改一下 修改 n no 不了
    """.split()
)
_SKIP = frozenset(
    """
    没有 没有了 没 没了 无 暂无 跳过 跳 不用 不用了 不需要 就这样 就这样吧 就这些 略 没啥
    没啥了 没什么 没什么了 没事 没别的 没别的了 没有别的 没有要说的 没有补充 不填 不写 空 无了
    """.split()
)
_FILLERS = frozenset("嗯 呃 额 哦 噢 啊 那个 这个".split())
_PARTICLES = "了啊呀吧哈哦噢嘞呢啦"
_SPLIT = re.compile(r"[\s,，、.。!！?？~]+")


def _answer_in(text: str, words: frozenset[str]) -> bool:
    """Whether every piece of the answer is one of `words` ("好的，提交" → both yes).

    Fillers ("嗯，不对") are ignored unless they are all there is; a trailing particle
    may be dropped ("可以了" → "可以"); a word may be repeated ("对对对", "没有没有").
    """
    parts = [part for part in _SPLIT.split(trimmed(text)) if part]
    meant = [part for part in parts if part not in _FILLERS] or parts
    return bool(meant) and all(_known(part, words) for part in meant)


def _known(part: str, words: frozenset[str]) -> bool:
    for candidate in {part, part.rstrip(_PARTICLES) or part}:
        if candidate in words:
            return True
        for word in words:
            times, rest = divmod(len(candidate), len(word))
            if rest == 0 and candidate == word * times:
                return True
    return False


def is_yes(text: str) -> bool:
    """The resident confirms: "确认", "好的", "嗯", "没问题", "ok", "对对对"… Digits are not yes."""
    return _answer_in(text, _YES)


def is_no(text: str) -> bool:
    """The resident declines or wants to correct: "不", "不对", "不用了", "重新填", "错了"…"""
    return _answer_in(text, _NO)


# Skipping in the resident's own words, one piece of the answer at a time.
_SKIP_WHAT = (
    r"(?:联系电话|联系方式|电话号码|手机号码|手机号|电话|手机|号码|座机|微信|名字|姓名|"
    r"地址|备注|这个|这些|这项|这一项|这一步|这一题|这题)"
)
# Each soft word once in this list ("那就" is 那 + 就), so a text has one reading only.
_SKIP_SOFT = r"(?:嗯|呃|额|那|就|还是|先|暂时|也|都|我们|我看|我|咱)*"
# Not 报/登记: "不报了" at a sign-up form gives up the whole sign-up, not one question.
_SKIP_GIVE = r"(?:留|填|写|说|给|告诉|提供|透露|讲)"
_SKIP_REFUSE = (
    rf"(?:(?:不想|不愿意|不愿|不方便|不用|不需要|不必|没必要|没法|不|不想再)(?:{_SKIP_GIVE})+"
    r"|不想|不愿意|不方便|保密)"
)
_SKIP_WORD = (
    r"(?:不用|不需要|用不着|不必|不必了|免了|算了|跳过|跳|略过|下一个|下一步|下一题|下一项|"
    r"就这样|就这些|没有|没|无)"
)
# "没有手机", "家里没电话", "没有别的要求": the resident has nothing to give.
_SKIP_HAVE_NOT = (
    r"(?:我|家里|我家|家)?(?:没有|没得|没)"
    r"(?:(?:别的|其他|其它|什么|啥)?(?:要求|补充|要补充的|要说的|想说的|说的|要交代的|备注)"
    r"|联系电话|电话号码|手机号码|手机号|电话|手机|号码|座机|微信)"
)
_SKIP_END = r"(?:了|啊|呀|吧|哈|哦|噢|嘞|呢|啦|谢谢你?|谢谢您|谢啦|谢了)*"
_SKIP_PIECE = (
    rf"{_SKIP_SOFT}"
    rf"(?:(?:{_SKIP_WHAT}{_SKIP_SOFT})?{_SKIP_REFUSE}{_SKIP_WHAT}?(?:你|您|你们)?"
    rf"|{_SKIP_HAVE_NOT}|{_SKIP_WORD})"
    rf"{_SKIP_END}"
)
_SKIP_RE = re.compile(rf"(?:{_SKIP_PIECE})+")  # repeated: "算了算了", "不用不用"
_SKIP_FILLERS = _FILLERS | frozenset("谢谢 谢谢你 谢谢您 多谢 谢了 好 好的 行 嗯嗯".split())
_SKIP_LONGEST = 30
"""A skip is a few words; a longer text is an answer (and is not searched for one)."""


def is_skip(text: str) -> bool:
    """The resident skips an optional question, in any common form.

    "没有", "无", "跳过", "不用了", "算了", "下一个", "就这样", "略"; refusing to give it:
    "不想留", "不留了", "不方便说", "不告诉你", "保密", "不想留电话", "电话就不留了",
    "号码不方便给"; having none: "没有手机", "家里没电话", "没有别的要求". Particles,
    fillers and thanks around it are fine ("好的，不用了，谢谢").

    Every piece of the answer must be a skip (or a filler): a skip word followed by a
    real answer is that answer, not a skip. "没有电梯的那栋" is an address and "没有别的
    要求，就是快点来" is a note to keep. "不" and "不要" alone are not skips (`is_no`):
    at a yes/no question they answer no, and "不要了" may mean the whole order.
    """
    s = trimmed(text)
    if len(s) > _SKIP_LONGEST:
        return False
    parts = [part for part in _SPLIT.split(s) if part]
    meant = [part for part in parts if part not in _SKIP_FILLERS]
    if not meant:
        return False
    return all(_known(part, _SKIP) or _SKIP_RE.fullmatch(part) for part in meant)


# ---------------------------------------------------------------------- questions


# Words and shapes that make a sentence a question. "什么"/"啥" after 没/不是 or before
# 都/也 is no question ("没什么", "什么都行"); "几" after 十/好 is a count ("十几个").
_QUESTION_RE = re.compile(
    r"吗|(?<![这那多什怎])么$"
    r"|(?<!没)(?<!没有)(?<!不是)(?:什么|啥)(?![都也])"
    r"|哪|谁|怎|咋|如何|为何|为什么|为啥|干嘛|干啥|是否|难道"
    r"|多少|多久|多长|多大|多远|多高|多重"
    r"|(?<![十好])几(?!十)[点号天个位楼栋时月年岁块次分钟日周]"
    r"|请问|想问|问一下|问下|问问|咨询|打听"
    # A-not-A: 要不要, 是不是, 可不可以, 有没有, 收不收费.
    r"|([^\d零〇一二两三四五六七八九十不没])[不没]\1"
    # Verb + final 不/没(有): "这个要钱不", "修好了没".
    r"|[^\s我你他她也都还就并可决绝很不]不$|[了过]没有?$"
    r"|^那.{0,8}呢$"  # "那暑假呢"
)
_QUESTION_MARK = re.compile(r"[?？]")
_HAS_NUMBER = re.compile(r"[\d零〇一二两三四五六七八九十]")


def looks_like_question(text: str) -> bool:
    """Whether the resident asked something instead of answering the bot's question.

    "现在是寒假，暑假才有吗？", "要带身份证吗", "这个要钱不", "几点开始啊", "在哪里",
    "怎么收费", "有没有人来" → True. Meant for questions whose answer is never a question
    (address, name, phone, number of people), so it is eager: a question word anywhere
    counts. A question mark counts too, except after a short answer with a number that
    the resident only doubts ("3栋？", "两个人？"). "3栋2单元", "就我一个吧", "没什么",
    "十几个人" → False. Try the question's own parser first where there is one.
    """
    s = compact(text)
    if not s:
        return False
    bare = _QUESTION_MARK.sub("", s)
    if _QUESTION_RE.search(bare):
        return True
    if _QUESTION_MARK.search(text) is None:  # `s` lost a final "？" with the punctuation
        return False
    plain = words_only(bare)
    return not (len(plain) <= 8 and _HAS_NUMBER.search(plain))


# ---------------------------------------------------------------------- addresses


_PLACE_NUMBER = r"(?:\d+|[零〇一二两三四五六七八九十百]+|[a-z])"
_PLACE_SUFFIX = (
    r"(?:号楼|栋楼|号院|号门|栋|幢|座|号|楼|单元|室|层|门|户|排|巷|弄|组|村|苑|园|院|区|期|"
    r"路|街|大厦|公寓|门面|商铺|铺|宿舍|家属院|胡同|社区|队|厂)"
)
_PLACE_RE = re.compile(
    rf"{_PLACE_NUMBER}{_PLACE_SUFFIX}"
    r"|(?<!\d)\d{1,4}(?:[-—–/]\d{1,4}){1,3}(?!\d)"  # "3-2-501", "7/301"
    r"|栋|幢|单元|小区|家属院|宿舍|公寓|大厦|大楼|花园|新村|家园|苑|胡同|巷子|弄堂"
    r"|门口|楼下|楼道|楼栋|车棚|车库|停车场|广场|菜市场|市场|超市|商场|公园|学校|幼儿园"
    r"|医院|卫生院|卫生站|诊所|药店|银行|邮局|居委会|村委会?|物业|门卫|岗亭|路口|桥头|底商"
    r"|活动室|活动中心|食堂|[东西南北正后侧大小]门"
)
# What an area's name may end with that residents leave out: "四季青片区" → "四季青".
_AREA_WORD = re.compile(r"(?:片区|网格|小区|社区|区域)$")
# Bare building or room numbers: "7", "七", "501".
_BARE_NUMBER_RE = re.compile(r"(?:\d{1,4}|[一二两三四五六七八九十]{1,3})(?:号|栋|楼)?[吧啊呀的]*")
# A new request, a complaint, thanks or a refusal, not a place.
_NOT_PLACE_RE = re.compile(
    r"坏|不亮|不通|不灵|不响|不出|漏|堵|滴水|渗水|冒水|停水|停电|没水|没电|跳闸|维修|修理|报修|"
    r"修一下|来修|修好|修不|帮我|帮忙|我要|我想|想要|需要|申请|办理|预约|报名|投诉|举报|反映|"
    r"救命|报警|着火|失火|火灾|被骗|骗子|谢谢|感谢|取消|不去|不要|不用|不办|吵|噪音|扰民|"
    r"乱停|乱扔|占用|打人|欺负|怎么办"
)


def looks_like_address(text: str, places: Iterable[str] = ()) -> bool:
    """Whether a free answer to "哪栋楼/地址" plausibly names a place.

    True for a number with a place word ("3栋2单元", "七号楼", "501室", "2组", "幸福路
    12号", "3-2-501"), a bare building or room number ("7", "七", "501"), one of
    `places` (the community's own area, building or street names, compared with Chinese
    numerals as digits) or a common place ("小区门口", "菜市场对面", "楼下车棚",
    "阳光花园", "东门"). False for a new request or complaint ("家里灯不亮了", "3栋的灯
    坏了"), thanks, a question (`looks_like_question`), a phone number, and text with no
    sign of a place ("你好", "5分", "明天下午").
    """
    s = compact(text)
    if not s or looks_like_question(text) or _NOT_PLACE_RE.search(s):
        return False
    # A mobile number is no house number: "138-1234-5678" alone is no place.
    s = _DIGIT_CHAIN.sub(lambda chain: "" if _mobiles_in(chain[0]) else chain[0], s)
    if _BARE_NUMBER_RE.fullmatch(s) or _PLACE_RE.search(s):
        return True
    said = arabic_numerals(s)
    for place in places:
        name = arabic_numerals(compact(place))
        # "四季青" names the area "四季青片区"; a one-character stem is too loose.
        stem = _AREA_WORD.sub("", name)
        if any(len(n) >= 2 and n in said for n in {name, stem}) or (name and name == said):
            return True
    return False


# ------------------------------------------------------------------------ ratings


_STARS = "⭐★🌟"
_RATING_NUMBER = r"(?P<n>[1-5]|[一二两三四五])"
_RATING_RE = re.compile(
    r"(?:我|那|那就|就|嗯)?(?:给|为)?(?:你们|您|师傅|他们|他|她)?(?:打|评|评价|评分|打分)?(?:个|了)?"
    rf"(?:{_RATING_NUMBER}(?:分|星|颗星|个星|星级|颗)|(?P<full>满分)|(?P<stars>[{_STARS}]+)"
    rf"|(?:评分|打分|分数)(?:是|为|:)?{_RATING_NUMBER.replace('?P<n>', '?P<m>')})"
    r"(?:好评|满意|吧|了|啊|呀|哈|哦|的)*"
)
# What may stand next to a rating: thanks, praise, blame.
_RATING_COMPANY = frozenset(
    """
    谢谢 谢谢你 谢谢您 谢谢你们 谢谢师傅 感谢 多谢 很满意 满意 非常满意 挺满意 好评 很好 挺好
    非常好 不错 很不错 辛苦了 师傅辛苦了 不满意 很不满意 太差了 差评 一般 还行 还可以 嗯 好的
    """.split()
)


def parse_rating(text: str) -> int | None:
    """A rating of 1 to 5 said in words, or None.

    "5分", "五分", "给5分", "打五分", "五星", "5颗星", "五星好评", "满分" (→ 5), "⭐⭐⭐⭐"
    (→ 4), "一分", "评分：3", and the same with thanks or praise around it ("五分，很
    满意，谢谢"). None for a bare number (it may be an option, a building, a count), for
    anything outside 1..5 ("十分满意" means "very satisfied", "0分", "6星", "4.5分"),
    for other units ("5号楼", "五分钟") and for two different ratings.
    """
    s = trimmed(text).replace("\ufe0f", "")
    found: set[int] = set()
    for part in _SPLIT.split(s):
        if not part or part in _RATING_COMPANY:
            continue
        match = _RATING_RE.fullmatch(part)
        if match is None:
            return None
        if match["full"]:
            found.add(5)
        elif match["stars"]:
            found.add(len(match["stars"]))
        else:
            found.add(_to_int(match["n"] or match["m"]) or 0)
    if len(found) != 1:
        return None
    rating = found.pop()
    return rating if 1 <= rating <= 5 else None


def mask_phone(phone: str) -> str:
    """138****0000: enough for a person to recognise their number, not to call it.
    Shown to residents (我的信息, a form's summary) and to staff who may not see the
    whole number (exports)."""
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
