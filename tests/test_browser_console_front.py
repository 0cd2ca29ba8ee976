"""In a real browser (Playwright on Debian's Chromium): a community worker opens the
console, sees the counts, follows 超时未办 to an overdue order, pages through the
board and finds the export link; no English word or internal id on any page.
Screenshots under ``test-artifacts/screenshots``.

Skipped without ``/usr/bin/chromium`` (see tests/test_browser.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest

from tests.browser_pages import Pages
from tests.test_browser import ARGS, chromium  # noqa: F401 (a fixture)
from tests.test_console import make_site
from tests.test_console_board import add_orders
from tests.test_console_front import dispatched_days_ago
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client

pytestmark = pytest.mark.browser


def no_english(html: str) -> None:
    shown = visible_text(html)
    codes = set(re.findall(r"(?<![A-Za-z0-9])[2-9A-Z]{6}(?![A-Za-z0-9])", shown))
    codes |= set(re.findall(r"(?<![A-Za-z0-9])PG\d{4}(?![A-Za-z0-9])", shown))
    assert english_words(shown, frozenset(codes | {"staff1"})) == [], shown
    for internal in ("dispatched", "unit:", "resident", "grid_key", "g1", "property"):
        assert internal not in shown, internal


async def test_front_page_to_an_overdue_order_paging_and_export(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811
    backend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    wechat, repair, _ = await make_site(db_url, aiohttp_client, tmp_path)
    await dispatched_days_ago(wechat, repair, 10)
    await add_orders(wechat, dt.date.today() - dt.timedelta(days=1), 30, prefix="PG")
    base = str(wechat.client.make_url("")).rstrip("/")
    pages = Pages(base, backend)
    shots = pages.shots

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await pages.sign_in(staff, "/login", "staff1")
        counts = staff.locator(".card.counts")
        await expect(counts.locator(".count-overdue")).to_contain_text("1 超时未办")
        await expect(counts.locator(".count-new")).to_contain_text("新订单")
        no_english(await staff.content())
        await staff.screenshot(path=str(shots / "console-front-1280.png"), full_page=True)

        await counts.locator(".count-overdue").click()
        row = staff.locator("table.orders tr.overdue", has_text=repair)
        await expect(row.locator(".badge-overdue")).to_have_text("超时")
        await expect(row.locator("td.grid")).to_have_text("第一网格")
        await expect(row.locator("td.resident")).to_have_text("未留姓名")
        await expect(staff.locator("table.orders tr", has_text="PG")).to_have_count(0)
        no_english(await staff.content())
        await row.locator(f"text={repair}").click()
        await expect(staff.locator(".overdue-note")).to_contain_text("已超过承诺时间")
        await expect(staff.locator("span.grid")).to_have_text("第一网格")
        no_english(await staff.content())
        await staff.screenshot(path=str(shots / "console-overdue-order-1280.png"), full_page=True)

        # The whole board, 20 a page: 上一页/下一页 and the total.
        await staff.goto(f"{base}/console")
        await staff.locator("a.page-size", has_text="20").click()
        paging = staff.locator("p.paging")
        await expect(paging).to_contain_text("共 31 单")
        await expect(paging).to_contain_text("第 1/2 页")
        await expect(staff.locator("table.orders tr:has(td a)")).to_have_count(20)
        await paging.locator("a[rel=next]").click()
        await expect(paging).to_contain_text("第 2/2 页")
        await expect(staff.locator("table.orders tr:has(td a)")).to_have_count(11)
        no_english(await staff.content())
        await staff.set_viewport_size({"width": 390, "height": 844})
        await staff.screenshot(path=str(shots / "console-paging-390.png"), full_page=True)

        # The export link: every order of the board's filter, headers in Chinese.
        link = await paging.locator("a.export-csv").get_attribute("href")
        assert link is not None and "page" not in link
        reply = await staff.request.get(f"{base}{link}")
        assert reply.ok
        table = list(csv.reader(io.StringIO((await reply.body()).decode("utf-8-sig"))))
        assert table[0][:3] == ["订单号", "服务", "承办单位"] and len(table) == 32
        async with staff.expect_download() as download:
            await paging.locator("a.export-xlsx").click()
        assert (await download.value).suggested_filename.endswith(".xlsx")
        await browser.close()
