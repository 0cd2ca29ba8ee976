"""A table as a file to download: Excel or CSV, the same Chinese headers in both."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from bot.spreadsheets import csv_bytes, xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def table_file(
    kind: str, sheet: str, name: str, header: Sequence[str], rows: Sequence[Sequence[object]]
) -> web.Response:
    """``name``.xlsx (one sheet titled ``sheet``) or ``name``.csv, for ``kind`` xlsx or
    csv. The workbook is built in a thread: it is CPU work."""
    if kind == "xlsx":
        book = await asyncio.to_thread(xlsx_bytes, sheet, header, rows)
        disposition = f'attachment; filename="{name}.xlsx"'
        return web.Response(
            body=book, content_type=XLSX, headers={"Content-Disposition": disposition}
        )
    return web.Response(
        body=csv_bytes(header, rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
