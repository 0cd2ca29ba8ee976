"""Reading a grid's household list (住户名单), as staff keep it in a spreadsheet.

The file is CSV saved by Excel or WPS: UTF-8 (with or without a BOM) or GBK, which
Excel in China writes by default. Its columns, with Chinese or English headers:
网格/grid (a grid's name or id; may be left out when the catalog's grid areas tell
the grid from the building), 楼栋/building, 单元/unit, 房号/room, 备注/notes, and
optionally 独居老人/elderly (是/否). A single 地址/address column (3栋2单元501) may
stand for 楼栋, 单元 and 房号.

The whole file is checked before anything is written: :func:`read_list` returns
every row ready to store, or every problem found, each naming its row, column and
value, said in English for operators (:meth:`Problem.english`) and in Chinese for
staff (:meth:`Problem.chinese`). Pure: no I/O (callers run it in a thread).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from catalog.addresses import Address, building_part, grid_of, parse_address, parse_parts
from catalog.schema import Grid

Cell = Callable[[str], str]
"""A row's value in a column (its name in :data:`COLUMNS`), "" when missing."""

MAX_ROWS = 20_000
ELDERLY_WORDS = re.compile(r"独居|空巢|孤寡|孤老")
"""Notes that say a household is an elderly person living alone (独居老人)."""
NEGATION = re.compile(r"(?:非|不|没|没有|无|未|并非|不是|不算|不属于)\s*$")
"""What, just before one of :data:`ELDERLY_WORDS` in the same clause, says the
opposite: 非独居, 不是独居老人, 并非空巢."""
CLAUSE_END = re.compile(r"[，,。.;；、!！?？\s]")
YES = frozenset({"是", "有", "y", "yes", "true", "1", "√", "✓", "独居", "独居老人"})
NO = frozenset({"", "否", "无", "不是", "n", "no", "false", "0", "×"})

COLUMNS: dict[str, tuple[str, ...]] = {
    "grid": ("网格", "所属网格", "网格名称", "grid"),
    "building": ("楼栋", "楼号", "栋", "楼", "building"),
    "unit": ("单元", "unit"),
    "room": ("房号", "门牌号", "户号", "房间号", "room"),
    "notes": ("备注", "说明", "notes", "note"),
    "elderly": ("独居老人", "是否独居老人", "elderly", "elderly_alone"),
    "address": ("地址", "住址", "address"),
}
COLUMN_ZH = {
    "grid": "网格",
    "building": "楼栋",
    "unit": "单元",
    "room": "房号",
    "notes": "备注",
    "elderly": "独居老人",
    "address": "地址",
    "file": "文件",
}


@dataclass(frozen=True)
class Problem:
    """Something wrong with the list: ``row`` is the spreadsheet's row number (the
    header is row 1; 0: the file as a whole)."""

    row: int
    column: str
    value: str
    code: str
    """unreadable, empty, no_columns, too_many, missing, unreadable_value, no_grid,
    unknown_grid, duplicate, not_yes_no."""
    detail: str = ""
    """unknown_grid: the grids there are; duplicate: the row it repeats."""

    def english(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.row else "file"
        value = f" '{self.value}'" if self.value else ""
        reason = {
            "unreadable": "is not text in UTF-8 or GBK",
            "empty": "has no rows",
            "no_columns": "needs the columns building and room (or address); "
            "headers found: " + self.detail,
            "too_many": f"has more than {MAX_ROWS} rows",
            "missing": "is empty",
            "unreadable_value": "is not an address part (e.g. 3栋, 2单元, 501)",
            "no_grid": f"is empty, and no grid's areas hold the building {self.detail}",
            "unknown_grid": f"is not a grid (grids: {self.detail})",
            "duplicate": f"repeats the address of row {self.detail}",
            "not_yes_no": "is not yes or no (是/否)",
        }[self.code]
        return f"{where}:{value} {reason}"

    def chinese(self) -> str:
        where = f"第{self.row}行“{COLUMN_ZH[self.column]}”" if self.row else "文件"
        value = f"“{self.value}”" if self.value else ""
        reason = {
            "unreadable": "读不出来，请用 Excel 另存为“CSV（逗号分隔）”后再上传",
            "empty": "里没有住户",
            "no_columns": "缺少“楼栋”和“房号”两列（或一列“地址”），请检查第一行的表头",
            "too_many": f"超过了{MAX_ROWS}行，请按网格分开上传",
            "missing": "没有填写",
            "unreadable_value": "看不懂，请写成 3栋、2单元、501 这样",
            "no_grid": f"没有填写，也看不出{self.detail}属于哪个网格，请填写网格",
            "unknown_grid": f"不是本社区的网格（现有网格：{self.detail}）",
            "duplicate": f"和第{self.detail}行是同一户",
            "not_yes_no": "请填“是”或“否”",
        }[self.code]
        return f"{where}{value}{reason}"


@dataclass(frozen=True)
class HouseholdRow:
    """A row ready to store."""

    row: int
    grid_key: str
    address: Address
    building: str
    """As shown: 3栋, 解东小区3栋."""
    notes: str
    elderly_alone: bool


@dataclass(frozen=True)
class ReadList:
    rows: list[HouseholdRow]
    problems: list[Problem]


def decode(data: bytes) -> str | None:
    """The file's text: UTF-8 (a BOM dropped), else GBK (GB18030, its superset);
    None when it is neither."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _column_of(header: str) -> str | None:
    said = re.sub(r"[\s*（）()]+", "", header).lower()
    for column, names in COLUMNS.items():
        if said in names:
            return column
    return None


def read_list(data: bytes, grids: Sequence[Grid]) -> ReadList:
    """Every row of the list, or every problem in it (then no rows)."""
    text = decode(data)
    if text is None:
        return ReadList([], [Problem(0, "file", "", "unreadable")])
    lines = list(csv.reader(io.StringIO(text)))
    while lines and not any(cell.strip() for cell in lines[0]):
        lines.pop(0)
    if not lines:
        return ReadList([], [Problem(0, "file", "", "empty")])
    header = [_column_of(h) for h in lines[0]]
    place = {column: i for i, column in reversed(list(enumerate(header))) if column}
    if not ({"building", "room"} <= place.keys() or "address" in place):
        found = ", ".join(h.strip() for h in lines[0] if h.strip()) or "-"
        return ReadList([], [Problem(1, "file", "", "no_columns", found)])
    if len(lines) - 1 > MAX_ROWS:
        return ReadList([], [Problem(0, "file", "", "too_many")])
    rows: list[HouseholdRow] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(lines[1:], start=2):
        if not any(value.strip() for value in cells):
            continue

        def cell(column: str, cells: list[str] = cells) -> str:
            index = place.get(column)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        read = _row(number, cell, grids)
        if isinstance(read, list):
            problems += read
            continue
        first = seen.setdefault(read.address.key, number)
        if first != number:
            column = "room" if "room" in place else "address"
            problems.append(Problem(number, column, read.address.label, "duplicate", str(first)))
            continue
        rows.append(read)
    if not rows and not problems:
        problems.append(Problem(0, "file", "", "empty"))
    return ReadList([] if problems else rows, problems)


def _row(number: int, cell: Cell, grids: Sequence[Grid]) -> HouseholdRow | list[Problem]:
    problems: list[Problem] = []
    address: Address | None = None
    if cell("building") or cell("room"):
        for column in ("building", "room"):
            if not cell(column):
                problems.append(Problem(number, column, "", "missing"))
        if not problems:
            address = parse_parts(cell("building"), cell("unit"), cell("room"))
            if address is None:
                problems += _unreadable_parts(number, cell)
    elif cell("address"):
        address = parse_address(cell("address"))
        if address is None:
            problems.append(Problem(number, "address", cell("address"), "unreadable_value"))
    else:
        problems.append(Problem(number, "building", "", "missing"))
    elderly_cell = cell("elderly")
    if elderly_cell.lower() not in YES | NO:
        problems.append(Problem(number, "elderly", elderly_cell, "not_yes_no"))
    if address is None or problems:
        return problems
    shown = building_part(cell("building")) if cell("building") else None
    shown = shown or f"{address.compound}{address.building}栋"
    grid_key = _grid(cell("grid"), grids, shown)
    if grid_key is None:
        if not cell("grid"):
            return [Problem(number, "grid", "", "no_grid", shown)]
        names = "、".join(g.name for g in grids) if grids else "-"
        return [Problem(number, "grid", cell("grid"), "unknown_grid", names)]
    notes = cell("notes")
    # The column, when filled in, is what staff decided; the notes only guess.
    elderly = elderly_cell.lower() in YES if elderly_cell else notes_say_elderly_alone(notes)
    return HouseholdRow(number, grid_key, address, shown, notes[:500], elderly)


def notes_say_elderly_alone(notes: str) -> bool:
    """Whether the notes call the household an elderly person living alone: a word
    of :data:`ELDERLY_WORDS` not negated in its clause (非独居, 不是独居老人 are not)."""
    for found in ELDERLY_WORDS.finditer(notes):
        before = notes[: found.start()]
        clause = CLAUSE_END.split(before)[-1]
        if not NEGATION.search(clause):
            return True
    return False


def _unreadable_parts(number: int, cell: Cell) -> list[Problem]:
    checks = (
        ("building", parse_parts(cell("building"), "", "1")),
        ("unit", parse_parts("1", cell("unit"), "1")),
        ("room", parse_parts("1", "", cell("room"))),
    )
    bad = [Problem(number, c, cell(c), "unreadable_value") for c, ok in checks if ok is None]
    return bad or [Problem(number, "room", cell("room"), "unreadable_value")]


def _grid(said: str, grids: Sequence[Grid], building: str) -> str | None:
    """The grid a row names (its id, or its name however spaced), else the one whose
    areas hold the building."""
    if said:
        plain = re.sub(r"\s+", "", said).lower()
        for grid in grids:
            if plain in (grid.id.lower(), re.sub(r"\s+", "", grid.name).lower()):
                return grid.id
        return None
    return grid_of(grids, building)
