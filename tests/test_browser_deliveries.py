"""In a real browser (Playwright on Debian's Chromium): staff see that an order's
notification did not reach its unit, why, press 重新发送, and see the mark go once a
member binds and it is sent. Screenshots under ``test-artifacts/screenshots``.

Skipped without ``/usr/bin/chromium`` (see tests/test_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_pages import Pages
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.test_browser import ARGS, chromium  # noqa: F401 (a fixture)
from tests.test_console import add_user
from tests.test_delivery_failures import send_outbox, service, wechat_catalog
from tests.test_ordering import say
from tests.test_units import invite, place
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client

pytestmark = pytest.mark.browser

fake_wechat = fake_wechat_fixture()


def no_english(html: str) -> None:
    shown = visible_text(html)
    codes = set(re.findall(r"(?<![A-Za-z0-9])[2-9A-Z]{6}(?![A-Za-z0-9])", shown))
    assert english_words(shown, frozenset(codes | {"staff1"})) == [], shown
    assert "no_member" not in html and "placed:" not in html


async def test_staff_see_an_undelivered_notification_and_it_is_resent(
    db_url: str,
    aiohttp_client: Client,
    fake_wechat: FakeWeChat,
    tmp_path: Path,
    chromium: str,  # noqa: F811
    backend: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    fake_wechat.add_user("o_worker")
    wechat = await service(aiohttp_client, db_url, fake_wechat, wechat_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    code = await place(wechat, "o_res")
    await send_outbox(wechat)
    base = str(wechat.client.make_url("")).rstrip("/")
    pages = Pages(base, backend)
    shots = pages.shots

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await pages.sign_in(staff, "/login", "staff1")
        front = staff.locator(".undelivered-front")
        await expect(front).to_contain_text("有 1 个订单的通知没有送到")
        no_english(await staff.content())
        await staff.screenshot(path=str(shots / "undelivered-front-1280.png"), full_page=True)

        await staff.click("text=查看这些订单")
        row = staff.locator("table.orders tr", has_text=code)
        await expect(row.locator(".badge-undelivered")).to_have_text("通知没送到")
        await row.locator(f"text={code}").click()
        card = staff.locator(".card.undelivered")
        await expect(card).to_contain_text("这个单位还没有人绑定微信")
        no_english(await staff.content())
        await staff.screenshot(path=str(shots / "undelivered-order-1280.png"), full_page=True)

        # Pressed too early: told what to do, in words.
        await card.locator("button:text-is('重新发送')").click()
        await expect(staff.locator(".card.error")).to_contain_text("请先把邀请码发给单位的联系人")
        no_english(await staff.content())

        # A member of the unit binds by chat: it goes out by itself.
        assert "绑定成功" in await say(
            wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}"
        )
        await staff.goto(f"{base}/console/orders/{code}")
        await expect(card).to_contain_text("正在重新发送")
        await expect(card.locator("button")).to_have_count(0)
        await send_outbox(wechat)
        assert fake_wechat.deliveries() == {"o_worker": 1}
        await staff.reload()
        await expect(staff.locator(".card.undelivered")).to_have_count(0)
        await expect(staff.locator(".badge-undelivered")).to_have_count(0)
        await staff.goto(f"{base}/console")
        await expect(staff.locator(".undelivered-front")).to_have_count(0)
        await expect(staff.locator(".badge-undelivered")).to_have_count(0)
        await staff.set_viewport_size({"width": 390, "height": 844})
        await staff.screenshot(path=str(shots / "undelivered-gone-390.png"), full_page=True)
        await browser.close()
