"""A confidential report (廉情监督反映) is known to its unit only: no count of it on
the public page or in the staff evaluation, and staff cannot file one for someone."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot import keys
from storage import models
from tests.test_broadcasts import cli
from tests.test_console import csrf_of, login, make_site
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

Site = tuple[WeChatServer, str, str]


@pytest.fixture
async def site(db_url: str, aiohttp_client: Client, tmp_path: Path) -> Site:
    return await make_site(db_url, aiohttp_client, tmp_path)


SECRET_UNIT = "街道纪工委"


def unit_card(page: str, name: str) -> str:
    """The 公示 card of one unit."""
    cards = page.split('<div class="card">')
    found = [card for card in cards if f"<h3>{name}<" in card]
    assert len(found) == 1, page[:500]
    return found[0]


async def test_the_public_page_shows_no_count_of_confidential_reports(site: Site) -> None:
    wechat, _, _ = site
    page = await (await wechat.client.get("/public")).text()
    card = unit_card(page, SECRET_UNIT)
    assert "本单位近期暂无派单" in card and "<td>1</td>" not in card, card
    # The other unit's order still counts.
    assert "<td>1</td>" in unit_card(page, "阳光物业")


async def test_metrics_count_no_confidential_report(site: Site) -> None:
    """/metrics needs no login: a count there would tell when a report arrives."""
    wechat, _, _ = site
    body = await (await wechat.client.get("/metrics")).text()
    counted = re.findall(r'^om_orders\{status="(\w+)"\} (\d+)', body, re.M)
    assert sum(float(n) for _, n in counted) == 1, counted  # the repair order, not the report


async def test_the_staff_evaluation_and_its_exports_leave_confidential_reports_out(
    site: Site,
) -> None:
    wechat, _, _ = site
    for who in ("staff1", "admin1"):
        browser = await login(wechat, who)
        page = await (await browser.get("/console/evaluation")).text()
        assert SECRET_UNIT not in page and "阳光物业" in page, who
        text = (await (await browser.get("/console/evaluation?format=csv")).read()).decode(
            "utf-8-sig"
        )
        units = [row[1] for row in list(csv.reader(io.StringIO(text)))[1:]]
        assert units == ["阳光物业"], (who, units)
        book = await (await browser.get("/console/evaluation?format=xlsx")).read()
        sheet = load_workbook(io.BytesIO(book)).active
        assert sheet is not None
        assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["阳光物业"]
        await browser.close()


async def test_the_unit_still_sees_its_confidential_report_and_counts_it(site: Site) -> None:
    wechat, _, secret = site
    unit = await login(wechat, "discipline1")
    portal = await (await unit.get("/portal")).text()
    assert secret in portal and "共 1 单" in portal
    figures = portal.split("本单位考评")[1]
    assert re.search(r"<td>\d{4}-\d{2}</td><td>1</td>", figures), figures
    await unit.close()
    # Staff's board does not count it either; admin's does (as before).
    staff = await login(wechat, "staff1")
    board = await (await staff.get("/console")).text()
    assert secret not in board and "共 1 单" in board
    await staff.close()
    admin = await login(wechat, "admin1")
    assert "共 2 单" in await (await admin.get("/console")).text()
    await admin.close()


async def test_staff_cannot_file_a_confidential_report_by_posting_its_hidden_id(
    site: Site, db_url: str
) -> None:
    wechat, _, _ = site
    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console")).text()
    assert 'value="integrity-report"' not in page  # not offered ...
    form = {
        "csrf": await csrf_of(staff, "/console"),
        "item": "integrity-report",  # ... but posted anyway
        "name": "张奶奶",
        "phone": "13800001234",
        "consent": "yes",
        "building": "7栋",
        "note": "物业经理收红包",
    }
    refused = await staff.post("/console/proxy", data=form, allow_redirects=False)
    text = await refused.text()
    assert refused.status == 400
    assert "是保密事项，不能由工作人员代办" in text and "integrity-report" not in text
    # What was typed is still in the form.
    for kept in ('value="张奶奶"', 'value="13800001234"', 'value="7栋"', 'value="物业经理收红包"'):
        assert kept in text, kept
    await staff.close()
    # The CLI's proxy orders are refused the same way, in English for the operator.
    out = await cli(
        db_url,
        "orders",
        "create",
        "--consent-given",
        "--item",
        "integrity-report",
        "--name",
        "张奶奶",
        "--phone",
        "13800001234",
    )
    assert out.startswith("1\n") and "confidential" in out, out
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        reports = await session.scalar(
            select(func.count(models.Order.id))
            .join(models.Item, models.Order.item_id == models.Item.id)
            .where(models.Item.key == "integrity-report")
        )
    assert reports == 1  # only the resident's own


def grid_board(page: str) -> list[tuple[str, int, int, int]]:
    """The 公示 page's per-grid rows: (grid, open, completed this month, completed)."""
    table = page.split('class="figures grids"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", table)
    return [(name, int(a), int(b), int(c)) for name, a, b, c in rows]


async def test_the_public_grid_board_counts_no_confidential_report(site: Site) -> None:
    """The resident's repair and confidential report are both open (and both from 1栋,
    第一网格): the board counts one open order in all, and no figure of it names a
    resident, a building or an order."""
    wechat, repair, secret = site
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        # Put the report in the repair's grid, so a count of it could show there.
        grid = await session.scalar(
            select(models.Order.grid_key).where(models.Order.code == repair)
        )
        order = await session.scalar(select(models.Order).where(models.Order.code == secret))
        assert order is not None and grid is not None
        order.grid_key = grid
    page = await (await wechat.client.get("/public")).text()
    board = grid_board(page)
    assert ("第一网格", 1, 0, 0) in board, board
    assert sum(row[1] for row in board) == 1, board
    for private in ("13899990000", "o_res", "1栋", repair, secret, "廉情", "收红包", "g1"):
        assert private not in page, private
