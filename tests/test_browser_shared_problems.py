"""In a real browser (Playwright driving Debian's Chromium): two households of one
building report the same leak through the webhook (我也遇到); the unit member opens
the one order in the portal and sees how many households it is for, and so does
staff in the console. Every page must be in Chinese, with no English word or
internal id. Screenshots are saved under ``test-artifacts/screenshots/<backend>/``
(not committed).

Needs ``/usr/bin/chromium``; see tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_pages import Pages
from tests.ordering_catalog import write_catalog
from tests.test_browser import ARGS, chromium  # noqa: F401 (fixture)
from tests.test_console import add_user
from tests.test_ordering import say
from tests.test_shared_problems import place, report
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser


async def test_one_order_for_two_households_as_the_unit_and_staff_see_it(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811 (the fixture imported above)
    backend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_first", "楼道的水管漏水了", "1栋")
    assert "算我一个" in await report(wechat, "o_second", "我家楼下水管也在漏水", "1栋")
    assert "共2户" in await say(wechat, "o_second", "算我一个")
    await add_user(wechat, "property1", "unit", "property")
    await add_user(wechat, "staff1", "staff")
    base = str(wechat.client.make_url("")).rstrip("/")
    pages = Pages(base, backend, allowed={code})

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        unit = await browser.new_page(viewport={"width": 390, "height": 800})
        await pages.sign_in(unit, "/portal", "property1")
        orders = unit.locator("table.orders")
        await expect(orders).to_contain_text(code)
        await unit.click(f"a:text-is('{code}')")
        await expect(unit.locator("body")).to_contain_text("共2户反映")
        await pages.check(unit, "portal-shared-order-390")

        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await pages.sign_in(staff, "/console", "staff1")
        await staff.goto(f"{base}/console/orders/{code}")
        await expect(staff.locator("body")).to_contain_text("共2户反映")
        await pages.check(staff, "console-shared-order-1280")
        await browser.close()
