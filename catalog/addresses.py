"""Reading a household's address as people write it: 3栋2单元501, 3号楼2单元501室,
三栋二单元五零一, 3-2-501, 解东小区3栋2单元501.

Grid workers type addresses in chat, staff fill them into spreadsheets, residents
give them when they order: the same room is written a dozen ways. Everything that
compares addresses goes through :func:`parse_address` (or :func:`parse_parts` for
a spreadsheet's separate columns) and compares the normalised :attr:`Address.key`,
so 三栋二单元五零一 and 3-2-501 are one household.

Also here: which grid (网格) a building belongs to, from the catalog grids' ``areas``
(:func:`grid_of`), shared by ordering and the household import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from catalog.answers import arabic_numerals
from catalog.normalize import simplified
from catalog.schema import Grid

_HUNDREDS = re.compile(
    r"(?P<h>[一二两三四五六七八九])百"
    r"(?:零(?P<o>[一二三四五六七八九])|(?P<t>[一二三四五六七八九])十(?P<u>[一二三四五六七八九])?"
    r"|(?P<tail>[一二三四五六七八九]))?"
)
_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}

_BUILDING_WORD = r"(?:号楼|栋楼|栋|幢|座|号|#楼?)"
_UNIT_WORD = r"(?:单元|门)"
_ROOM_WORD = r"(?:室|号|房|户)?"
_SPELLED = re.compile(
    rf"(?P<compound>.*?)(?P<building>\d{{1,3}}|[A-Z])\s*{_BUILDING_WORD}\s*"
    rf"(?:(?P<unit>\d{{1,2}})\s*{_UNIT_WORD}\s*)?"
    rf"(?:(?P<floor>\d{{1,2}})\s*[楼层]\s*)?"
    rf"(?P<room>\d{{1,5}}|[A-Z]?\d{{1,4}}[A-Z]?)\s*{_ROOM_WORD}"
)
_DASHED = re.compile(
    r"(?P<compound>.*?)(?P<building>\d{1,3}|[A-Z])\s*(?:栋|幢|座|号楼)?\s*[-/—–－]\s*"
    r"(?P<unit>\d{1,2})\s*(?:单元)?\s*[-/—–－]\s*(?P<room>\d{1,5})\s*" + _ROOM_WORD
)
_COMPOUND_NOISE = re.compile(r"[\s,，、:：;；.。()（）]+")


@dataclass(frozen=True)
class Address:
    """A household's address: ``compound`` is the estate's name when one was written
    (解东小区), "" otherwise; ``unit`` is "" for a building without units."""

    building: str
    unit: str
    room: str
    compound: str = ""

    @property
    def key(self) -> str:
        """The normalised address: 3-2-501, 3--501 without a unit, 解东:3-2-501 with an
        estate's name (``小区`` dropped)."""
        bare = f"{self.building}-{self.unit}-{self.room}"
        return f"{self.compound}:{bare}" if self.compound else bare

    @property
    def bare_key(self) -> str:
        """The key without the estate's name: what an address that names none matches."""
        return f"{self.building}-{self.unit}-{self.room}"

    @property
    def label(self) -> str:
        """How it is shown to people: 3栋2单元501."""
        unit = f"{self.unit}单元" if self.unit else ""
        return f"{self.building}栋{unit}{self.room}"


def numerals(text: str) -> str:
    """Simplified, half-width, upper-case text with Chinese numerals as digits
    (五百零一 → 501, 三栋 → 3栋, 五零一 → 501)."""

    def hundreds(found: re.Match[str]) -> str:
        value = _DIGIT[found["h"]] * 100
        if found["o"]:
            value += _DIGIT[found["o"]]
        elif found["t"]:
            value += _DIGIT[found["t"]] * 10 + (_DIGIT[found["u"]] if found["u"] else 0)
        elif found["tail"]:
            value += _DIGIT[found["tail"]] * 10  # 五百一: 510, as it is said
        return str(value)

    said = simplified(text).upper()
    return arabic_numerals(_HUNDREDS.sub(hundreds, said))


def _compound(text: str) -> str:
    name = _COMPOUND_NOISE.sub("", text)
    return name.removesuffix("小区")


def parse_address(text: str) -> Address | None:
    """The address the whole of ``text`` names, or None when it names none (or more)."""
    said = numerals(text).strip()
    for pattern in (_SPELLED, _DASHED):
        found = pattern.fullmatch(said)
        if found is not None:
            return _address(found)
    return None


def _address(found: re.Match[str]) -> Address | None:
    room = found["room"]
    groups = found.groupdict()
    if groups.get("floor") and not room.startswith(groups["floor"]):
        room = f"{groups['floor']}{room.zfill(2)}"  # 5楼1号 → 501
    unit = str(int(found["unit"])) if found["unit"] else ""
    building = found["building"]
    building = str(int(building)) if building.isdigit() else building
    room = room.lstrip("0") or "0"
    return Address(building, unit, room, _compound(found["compound"]))


_BUILDING_PART = re.compile(rf"(?P<compound>.*?)(?P<building>\d{{1,3}}|[A-Z])\s*{_BUILDING_WORD}?")
_UNIT_PART = re.compile(rf"(?P<unit>\d{{1,2}})\s*{_UNIT_WORD}?")
_ROOM_PART = re.compile(rf"(?P<room>\d{{1,5}})\s*{_ROOM_WORD}")


def parse_parts(building: str, unit: str, room: str) -> Address | None:
    """An address given in a spreadsheet's separate columns (楼栋 3栋 or 3, 单元 2单元,
    2 or empty, 房号 501室); None when a part cannot be read."""
    b = _BUILDING_PART.fullmatch(numerals(building).strip())
    u = _UNIT_PART.fullmatch(numerals(unit).strip()) if unit.strip() else None
    r = _ROOM_PART.fullmatch(numerals(room).strip())
    if b is None or r is None or (unit.strip() and u is None):
        return None
    number = b["building"]
    return Address(
        building=str(int(number)) if number.isdigit() else number,
        unit=str(int(u["unit"])) if u else "",
        room=r["room"].lstrip("0") or "0",
        compound=_compound(b["compound"]),
    )


def building_part(text: str) -> str | None:
    """Which building a spreadsheet's 楼栋 cell names, written as 3栋 (with its estate's
    name, when given): what :func:`grid_of` reads. None when it names none."""
    b = _BUILDING_PART.fullmatch(numerals(text).strip())
    return f"{b['compound'].strip()}{b['building']}栋" if b else None


_RANGE = re.compile(
    r"(?P<prefix>.*?)(?P<low>\d+)\s*[-－~～至到]\s*(?P<high>\d+)\s*(?P<unit>栋|幢|号楼|号)"
)
_BUILDING = re.compile(r"(?<!\d)(\d+)\s*(?:栋|幢|号楼|号)")


def grid_of(grids: Sequence[Grid], building: str) -> str | None:
    """The grid (网格) whose areas name the building: 七栋 and 7栋 alike, and 11栋 is
    not 1栋. An area given as a range (解东小区1-6栋) holds each building in it: 3栋
    is there, said with or without the compound's name; when two compounds' ranges
    both hold it, the one the resident named."""
    said = arabic_numerals(building)
    for grid in grids:
        for area in [*grid.areas, grid.name]:
            if re.search(r"(?<!\d)" + re.escape(arabic_numerals(area)), said):
                return grid.id
    numbers = [int(n) for n in _BUILDING.findall(said)]
    if not numbers:
        return None
    holding: list[tuple[str, str]] = []  # (grid, compound) of each range holding it
    for grid in grids:
        for area in grid.areas:
            span = _RANGE.fullmatch(arabic_numerals(area).strip())
            if span and int(span["low"]) <= numbers[0] <= int(span["high"]):
                holding.append((grid.id, span["prefix"].strip()))
    named = [g for g, prefix in holding if prefix and prefix in said]
    candidates = {g for g, _ in holding} if not named else set(named)
    return candidates.pop() if len(candidates) == 1 else None


Building = tuple[str, str]
"""A building as (estate's name or "", its number): ("解东", "3"), ("", "3")."""
_LIST_SEPARATORS = re.compile(r"[、,，;；/\s]+")


def buildings_named(text: str) -> set[Building]:
    """The buildings one entry of a list names, as staff type them for a 楼栋群:
    3栋, 解东小区3栋, 三号楼, and ranges (1-6栋: each of 1 to 6); several may be
    separated by 、 or commas (3栋、4栋). Nothing for what names no building."""
    named: set[Building] = set()
    for part in _LIST_SEPARATORS.split(numerals(text).strip()):
        span = _RANGE.fullmatch(part)
        if span is not None:
            low, high = int(span["low"]), int(span["high"])
            if 0 < high - low <= 200:
                compound = _compound(span["prefix"])
                named |= {(compound, str(n)) for n in range(low, high + 1)}
            continue
        found = _BUILDING_PART.fullmatch(part)
        if found is not None:
            number = found["building"]
            named.add(
                (_compound(found["compound"]), str(int(number)) if number.isdigit() else number)
            )
    return named


def building_of_key(address_key: str) -> Building:
    """The building of a household's normalised address (``Address.key``)."""
    compound, _, bare = address_key.rpartition(":")
    return compound, bare.split("-", 1)[0]


def covers(named: set[Building], building: Building) -> bool:
    """Whether a list of buildings names this one: the same number, and the same
    estate when both name one (3栋 in a one-estate community is 解东小区3栋)."""
    compound, number = building
    return any(n == number and (not c or not compound or c == compound) for c, n in named)
