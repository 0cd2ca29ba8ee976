"""The order board filters in the database and pages through everything it matches:
an older day's orders are all there, however many came after them."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bot import keys
from storage import models
from storage.repositories.ordering import item_row
from tests.fake_clock import SHANGHAI
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, login
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

ORDER_LINK = re.compile(r'<a href="/console/orders/([A-Z0-9]+)">')
PAGE_SIZE = 50
OLD_DAY = dt.date.today() - dt.timedelta(days=10)


async def add_orders(
    wechat: WeChatServer, day: dt.date, n: int, *, prefix: str, grid: str = "g1", hour: int = 9
) -> list[str]:
    """``n`` orders placed one minute apart from ``hour`` (Shanghai) on ``day``,
    straight into the database (the board only reads them)."""
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        item = await item_row(session, "testville", "home-repair")
        resident = models.Resident(community_id="testville", openid=f"o_{prefix}", tags=[])
        session.add(resident)
        await session.flush()
        start_at = dt.datetime.combine(day, dt.time(hour), tzinfo=SHANGHAI)
        codes = [f"{prefix}{i:04d}" for i in range(n)]
        session.add_all(
            models.Order(
                community_id="testville",
                code=code,
                item_id=item.id,
                unit_id=item.unit_id,
                resident_id=resident.id,
                status="dispatched",
                answers={},
                grid_key=grid,
                created_at=start_at + dt.timedelta(minutes=i),
            )
            for i, code in enumerate(codes)
        )
    return codes


def flat(listed: list[list[str]]) -> list[str]:
    return [code for page in listed for code in page]


async def pages(browser: aiohttp.ClientSession, path: str) -> tuple[list[list[str]], str]:
    """Every page's order codes, following 下一页 from ``path``; and the first page."""
    first = page = await (await browser.get(path)).text()
    seen = []
    while True:
        seen.append(ORDER_LINK.findall(page))
        following = re.search(r'<a href="([^"]+)" rel="next">下一页</a>', page)
        if following is None:
            return seen, first
        page = await (await browser.get(following[1].replace("&amp;", "&"))).text()


async def test_an_older_days_orders_are_all_on_the_board_page_by_page(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    old = await add_orders(wechat, OLD_DAY, 45, prefix="OLD", grid="g1")
    old += await add_orders(wechat, OLD_DAY, 20, prefix="OLE", grid="g2", hour=14)
    recent = await add_orders(wechat, dt.date.today() - dt.timedelta(days=1), 210, prefix="NEW")
    staff = await login(wechat, "staff1")

    listed, first = await pages(staff, f"/console?date={OLD_DAY}")
    assert "共 65 单" in first and "第 1/2 页" in first and "上一页" not in first
    assert [len(p) for p in listed] == [PAGE_SIZE, 15]
    assert sorted(flat(listed)) == sorted(old)  # every one, once
    assert listed[0][0] == "OLE0019"  # newest first

    # Filters combine, in the query: the older day's second grid only.
    listed, first = await pages(staff, f"/console?date={OLD_DAY}&grid=g2")
    assert "共 20 单" in first and flat(listed) == [f"OLE{i:04d}" for i in reversed(range(20))]

    # The unfiltered board pages through all of them; the links keep the filters.
    listed, first = await pages(staff, "/console?status=dispatched")
    assert "共 275 单" in first and "第 1/6 页" in first
    assert sorted(flat(listed)) == sorted(old + recent)
    last = await (await staff.get("/console?status=dispatched&page=6")).text()
    previous = re.search(r'<a href="([^"]+)" rel="prev">上一页</a>', last)
    assert previous is not None and "下一页" not in last
    query = parse_qs(urlsplit(previous[1].replace("&amp;", "&")).query)
    assert query == {"status": ["dispatched"], "page": ["5"]}
    # Past the last page: the last page.
    assert "第 6/6 页" in await (await staff.get("/console?page=99")).text()

    nothing = await (await staff.get(f"/console?date={OLD_DAY - dt.timedelta(days=1)}")).text()
    assert "没有订单" in nothing and "共 0 单" in nothing
    await staff.close()
