"""CSV and Excel exports that a spreadsheet opens as data, never as formulas.

Exported cells carry text others wrote (unit names from a catalog, a resident's
openid, an error from WeChat). Excel and LibreOffice run a cell that starts with
``=``, ``+``, ``-`` or ``@`` as a formula (``=HYPERLINK(...)`` sends whoever clicks
it to any site; DDE formulas start programs), and a leading tab or carriage return
can hide such a start. Every export goes through this module (OWASP "CSV
injection"):

* CSV: such a cell gets a leading single quote, which spreadsheets show as text;
* XLSX: every text cell is written as a string, never a formula, and such a cell is
  marked "quote prefix" so it stays text when someone edits it in Excel.

Numbers stay numbers; only text is touched.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def dangerous(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def csv_cell(value: object) -> object:
    """The value as written to a CSV file: text that a spreadsheet would run gets a
    leading single quote."""
    return f"'{value}" if dangerous(value) else value


def write_csv(file: IO[str], header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    writer = csv.writer(file)
    writer.writerow([csv_cell(name) for name in header])
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte-order mark: Excel then reads Chinese text correctly."""
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A one-sheet workbook. CPU work: call it in a thread from the event loop."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for r, row in enumerate([header, *rows], start=1):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c)
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters: refused
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl takes "=…" for a formula otherwise
                if dangerous(value):
                    cell.quotePrefix = True
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
