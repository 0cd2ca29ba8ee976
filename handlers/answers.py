"""Understand residents' short answers to the bot's questions.

Pure, synchronous functions, no I/O. Answers come typed or from WeChat voice
recognition, which adds a trailing "。" and may write numbers as full-width digits or
Chinese numerals; many users are elderly and answer in everyday words
("就第二个吧", "我和老伴", "明天下午"). Every parser returns None (or False) when it
is not sure, so the caller can simply ask again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "Slot",
    "is_no",
    "is_skip",
    "is_yes",
    "parse_choice",
    "parse_people",
    "parse_phone",
    "parse_slot",
]


# --------------------------------------------------------------------------- text


_EXTRA_EDGE = frozenset("~^`|")


def _is_edge_noise(char: str) -> bool:
    """Punctuation, spaces and the like that may surround an answer."""
    return char.isspace() or char in _EXTRA_EDGE or unicodedata.category(char)[0] in "PZ"


def _normalize(text: str) -> str:
    """NFKC (full-width → half-width), lower case, no surrounding punctuation or spaces."""
    s = unicodedata.normalize("NFKC", text).lower()
    start, end = 0, len(s)
    while start < end and _is_edge_noise(s[start]):
        start += 1
    while end > start and _is_edge_noise(s[end - 1]):
        end -= 1
    return s[start:end]


def _compact(text: str) -> str:
    """`_normalize` and also drop the spaces inside ("第 2 个" → "第2个")."""
    return re.sub(r"\s+", "", _normalize(text))


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
    match = _CHOICE_RE.fullmatch(_compact(text))
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
    r"老母亲|老父亲|哥哥?|姐姐?|弟弟?|妹妹?|朋友|邻居|保姆|护工|阿姨|家人|亲戚)"
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


def parse_people(text: str, max_people: int) -> int | None:
    """How many people the resident means, within 1..max_people, or None.

    "2", "两位", "三个人", "5人", "十二个" → the number; "就我一个", "我自己" → 1;
    "我和老伴", "我们俩", "两口子" → 2; "我和老伴还有孙子" → 3. Ranges ("两三个") and
    anything else → None.
    """
    s = _compact(text)
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
    if count is None or not 1 <= count <= max_people:
        return None
    return count


# -------------------------------------------------------------------------- phone


_SPOKEN_DIGITS = str.maketrans("零〇一幺二三四五六七八九", "001123456789")
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


def parse_phone(text: str) -> str | None:
    """A mainland China mobile number in the text, as 11 digits, or None.

    Spaces, dashes and dots between digit groups, a "+86"/"86"/"0086" prefix,
    full-width digits, Chinese digits as voice input writes them ("幺三八…") and words
    around the number are fine. Landlines, 10 or 12 digits, or two different mobiles
    → None.
    """
    s = unicodedata.normalize("NFKC", text).translate(_SPOKEN_DIGITS)
    found: set[str] = set()
    for chain in _DIGIT_CHAIN.finditer(s):
        found |= _mobiles_in(chain.group(0))
    return found.pop() if len(found) == 1 else None


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
    s = _expand_spoken(_compact(text))
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
    parts = [part for part in _SPLIT.split(_normalize(text)) if part]
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


def is_skip(text: str) -> bool:
    """The resident skips an optional question: "没有", "无", "跳过", "不用", "就这样", "略"…"""
    return _answer_in(text, _SKIP)
