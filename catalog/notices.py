"""Whether a live notice answers a resident's message (pure functions, no I/O).

Staff publish 「5栋今日停水，预计18点恢复」 for a building (or a grid, or everyone); a
resident of 5栋 who writes 家里没水了 or 水龙头不出水 should read the notice before
being asked for their phone number. A notice answers a message when

* the place fits: the notice is for everyone, for the resident's grid, or for their
  building (the building the message names, else the one they gave last time);
* and the subject fits: a word of the notice's subject is in the message. The
  subject is read from the notice's own text (停水 means 没水, 不出水, 来水 … too) and
  from the keywords staff add; or the message was read as the catalog item staff
  chose for the notice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from catalog.answers import arabic_numerals
from catalog.normalize import normalize

SUBJECTS: dict[str, tuple[str, ...]] = {
    "停水": ("停水", "没水", "断水", "不出水", "没有水", "来水", "水停了", "水压", "水很小"),
    "停电": ("停电", "没电", "断电", "来电", "没有电", "电停了", "供电"),
    "停气": ("停气", "没气", "断气", "燃气", "天然气", "煤气", "打不着火", "供气"),
    "电梯": ("电梯",),
    "断网": ("断网", "没网", "没有网", "网络", "宽带", "上不了网"),
    "施工": ("施工", "挖路", "封路", "噪音"),
}
"""Subjects a notice may be about, each with the everyday words for it. A notice is
about a subject when one of the subject's words is in its text or keywords."""

_BUILDING = re.compile(r"(\d+)\s*(?:号楼|栋|幢|座)")


@dataclass(frozen=True)
class NoticeFacts:
    """What matching needs of a notice."""

    text: str
    grid_key: str | None = None
    building: str | None = None
    keywords: tuple[str, ...] = ()
    item_key: str | None = None


@dataclass(frozen=True)
class Place:
    """Where the resident is, as far as the bot knows."""

    grid_key: str | None = None
    building: str | None = None


@dataclass(frozen=True)
class Said:
    """The message: its text and the catalog items it was read as (best first)."""

    text: str
    items: Collection[str] = field(default_factory=tuple)


def subject_words(notice: NoticeFacts) -> set[str]:
    """The words that make a message about the notice's subject."""
    own = [normalize(k) for k in notice.keywords if k.strip()]
    said = normalize(" ".join([notice.text, *own]))
    words = set(own)
    for variants in SUBJECTS.values():
        if any(normalize(v) in said for v in variants):
            words.update(normalize(v) for v in variants)
    return {w for w in words if w}


def about_subject(notice: NoticeFacts, said: Said) -> bool:
    if notice.item_key is not None and notice.item_key in said.items:
        return True
    text = normalize(said.text)
    return any(word in text for word in subject_words(notice))


def building_number(text: str) -> tuple[str, str] | None:
    """The building a text names: (the estate before it, the number): 解东小区5栋2单元 →
    (解东小区, 5); 七号楼 → ('', 7). None when it names no numbered building."""
    plain = arabic_numerals(normalize(text))
    found = _BUILDING.search(plain)
    if found is None:
        return None
    return plain[: found.start()].strip(" ，,、"), found[1]


def same_building(notice_building: str, resident_building: str) -> bool:
    """5栋 is 解东小区5栋2单元 and 五栋; it is not 15栋, nor 铁佛塘小区5栋 when the notice
    names 解东小区."""
    ours, theirs = building_number(notice_building), building_number(resident_building)
    if ours is None or theirs is None:
        a, b = normalize(notice_building), normalize(resident_building)
        return bool(a and b) and (a in b or b in a)
    (estate, number), (their_estate, their_number) = ours, theirs
    if number != their_number:
        return False
    if estate and their_estate:
        return estate in their_estate or their_estate in estate
    return True


def at_place(notice: NoticeFacts, place: Place) -> bool:
    if notice.building:
        return place.building is not None and same_building(notice.building, place.building)
    if notice.grid_key:
        return place.grid_key == notice.grid_key
    return True  # the whole community


def place_of(said: str, known: Place, grid_of: Callable[[str], str | None]) -> Place:
    """The resident's place for this message: a building the message names wins over the
    one they gave before (5栋停水了吗 from someone whose form said 7栋)."""
    if building_number(said) is None:
        return known
    return Place(grid_key=grid_of(said), building=said)


def answering(notices: Iterable[NoticeFacts], said: Said, place: Place) -> list[NoticeFacts]:
    """The notices that answer the message, in the order given."""
    return [n for n in notices if at_place(n, place) and about_subject(n, said)]
