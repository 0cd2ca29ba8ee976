"""In a real browser (Playwright driving Debian's Chromium): staff publish a 停水 notice
from the console, and a unit member completes an order with a 常用回复 button in the
portal; every page shown must be in Chinese, with no English word or internal id.
Screenshots are saved under ``test-artifacts/screenshots/<backend>/`` (not committed).

Needs ``/usr/bin/chromium``; see tests/test_browser.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.browser_pages import Pages
from tests.ordering_catalog import ZONE, write_catalog
from tests.test_browser import ARGS, chromium  # noqa: F401 (fixture)
from tests.test_console import add_user
from tests.test_ordering import say
from tests.test_units import outbox_texts, place
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser


async def test_staff_publish_a_notice_and_a_unit_completes_with_a_common_reply(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811 (the fixture imported above)
    backend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    code = await place(wechat, "o_one")  # 1栋
    base = str(wechat.client.make_url("")).rstrip("/")
    pages = Pages(base, backend, allowed={code})

    until = (dt.datetime.now(ZONE) + dt.timedelta(days=1)).strftime("%Y-%m-%dT18:00")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await pages.sign_in(staff, "/console/notices", "staff1")
        await expect(staff.locator("form#publish")).to_be_visible()
        await pages.check(staff, "notices-empty-1280")
        await staff.check("input[name=scope][value=building]")
        await staff.fill("input[name=building]", "1栋")
        await staff.fill("textarea[name=text]", "1栋今日停水，预计18点恢复")
        await staff.fill("input[name=until]", until)
        await staff.click("form#publish button")
        await expect(staff.locator(".card.notice")).to_contain_text("生效中")
        await pages.check(staff, "notices-published-1280")

        reply = await say(wechat, "o_one", "家里没水了")
        assert "1栋今日停水" in reply and "报修" in reply, reply
        await staff.reload()
        await expect(staff.locator(".card.notice")).to_contain_text("已提醒 1 位居民")

        unit = await browser.new_page(viewport={"width": 390, "height": 844})
        await pages.sign_in(unit, "/portal", "property1")
        await unit.goto(f"{base}/console/orders/{code}")
        await pages.check(unit, "portal-common-replies-390")
        await unit.click("button:text-is('接单：师傅今天下午上门，请留意电话')")
        await expect(unit.locator(".card").first).to_contain_text("已接单")
        await unit.click("button:text-is('开始服务')")
        await unit.click("button:text-is('办结：已修好，请试用')")
        await expect(unit.locator(".card").first).to_contain_text("已完成")
        await pages.check(unit, "portal-completed-with-reply-390")
        await browser.close()

    news = await outbox_texts(wechat, "o_one")
    assert any("办理情况：已修好，请试用" in t for t in news), news
