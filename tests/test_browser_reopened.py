"""In a real browser (Playwright driving Debian's Chromium): a resident says at the
回访 that the leak is not fixed (through the webhook); staff see it on the console's
front page under 重办, follow the count to the order and read the resident's words
there; the unit member sees the same on the portal. Every page must be in Chinese,
with no English word or internal id. Screenshots are saved under
``test-artifacts/screenshots/<backend>/`` (not committed).

Needs ``/usr/bin/chromium``; see tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_pages import Pages
from tests.ordering_catalog import write_catalog
from tests.test_browser import ARGS, chromium  # noqa: F401 (fixture)
from tests.test_console import add_user
from tests.test_followups import completed
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser


async def test_a_reopened_order_as_staff_and_the_unit_find_it(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811 (the fixture imported above)
    backend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await completed(wechat, db_url, "o_leak", "o_fixer")
    reply = await wechat.text("o_leak", "没解决，厨房还在漏")
    assert "重新交给" in reply.text, reply.text
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    base = str(wechat.client.make_url("")).rstrip("/")
    pages = Pages(base, backend, allowed={code})

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await pages.sign_in(staff, "/console", "staff1")
        reopened = staff.locator("a.count-reopened")
        await expect(reopened).to_contain_text("1")
        await pages.check(staff, "console-front-reopened-1280")
        await reopened.click()
        await staff.click(f"a:text-is('{code}')")
        await expect(staff.locator("body")).to_contain_text("厨房还在漏")
        await expect(staff.locator("body")).to_contain_text("已重办")
        await pages.check(staff, "console-reopened-order-1280")

        unit = await browser.new_page(viewport={"width": 390, "height": 800})
        await pages.sign_in(unit, "/portal", "property1")
        await unit.goto(f"{base}/console/orders/{code}")
        await expect(unit.locator("body")).to_contain_text("厨房还在漏")
        await pages.check(unit, "portal-reopened-order-390")
        await browser.close()
