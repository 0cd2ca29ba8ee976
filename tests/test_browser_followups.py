"""In a real browser (Playwright driving Debian's Chromium): a unit member uses the
portal's honest-outcome buttons (办不了 with a reason, 不归我管, 申请退单) and staff
approve the 退单 in the console, as they would; every page they see must be in
Chinese, with no English word or internal id. Screenshots are saved under
``test-artifacts/screenshots/<backend>/`` (not committed).

Needs ``/usr/bin/chromium``; see tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.order_status import OrderStatus
from tests.ordering_catalog import write_catalog
from tests.test_browser import ARGS, ARTIFACTS, chromium  # noqa: F401 (fixture)
from tests.test_console import PASSWORD, add_user
from tests.test_ordering import orders_of
from tests.test_staff_pages_chinese import ALLOWED, INTERNAL_IDS
from tests.test_units import outbox_texts, place
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser


async def test_a_unit_says_how_it_ended_and_staff_approve_a_return(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811 (the fixture imported above)
    backend: str,
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "property1", "unit", "property")
    await add_user(wechat, "staff1", "staff")
    codes = [await place(wechat, openid) for openid in ("o_a", "o_b", "o_c")]
    impossible, not_ours, give_back = codes
    base = str(wechat.client.make_url("")).rstrip("/")
    shots = ARTIFACTS / backend
    shots.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []

    async def check(page: Page, name: str) -> None:
        """No English word or internal id on the page as shown; a screenshot kept."""
        text = visible_text(await page.content())
        words = english_words(text, ALLOWED | set(codes)) + INTERNAL_IDS.findall(text)
        assert not words, (name, words, text[:300])
        await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        seen.append(name)

    async def act(page: Page, code: str, action: str, note: str | None = None) -> None:
        await page.goto(f"{base}/console/orders/{code}")
        form = page.locator(f"form[action='/console/orders/{code}/{action}']")
        if note is not None:
            await form.locator("input[name=note]").fill(note)
        await form.locator("button").click()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        unit = await browser.new_page(viewport={"width": 1280, "height": 800})
        await unit.goto(f"{base}/portal")
        await unit.fill("input[name=username]", "property1")
        await unit.fill("input[name=password]", PASSWORD)
        await unit.click("button[type=submit]")
        await expect(unit.locator("table.orders")).to_contain_text(impossible)
        await unit.goto(f"{base}/console/orders/{impossible}")
        for label in ("办不了", "不归我管", "申请退单"):
            await expect(unit.locator(f"button:text-is('{label}')")).to_be_visible()
        await check(unit, "portal-order-buttons-1280")

        # 办不了 without a reason is refused, politely, and keeps the order as it was.
        await act(unit, impossible, "not_possible")
        await expect(unit.locator(".card.error")).to_contain_text("原因")
        await act(unit, impossible, "not_possible", "楼体裂缝，需要住建部门鉴定")
        await expect(unit.locator(".card").first).to_contain_text("办不了")
        await check(unit, "portal-not-possible-1280")

        await act(unit, not_ours, "misrouted", "这是自来水公司的主管道")
        await expect(unit.locator(".card").first).to_contain_text("待改派")
        await check(unit, "portal-misrouted-1280")

        await act(unit, give_back, "return", "配件要等一个月")
        await expect(unit.locator(".card").first).to_contain_text("退单待批")
        await expect(unit.locator(".card.error")).to_contain_text("仍由贵单位负责")
        await check(unit, "portal-return-asked-1280")

        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await staff.goto(f"{base}/login")
        await staff.fill("input[name=username]", "staff1")
        await staff.fill("input[name=password]", PASSWORD)
        await staff.click("button[type=submit]")
        await expect(staff.locator(".card.waiting")).to_contain_text("1 个退单申请等您审核")
        await expect(staff.locator(".card.waiting")).to_contain_text("不归他们管")
        await check(staff, "console-waiting-1280")
        await staff.click("text=个退单申请等您审核")
        await staff.click(f"text={give_back}")
        await expect(staff.locator(".card.error")).to_contain_text("配件要等一个月")
        await check(staff, "console-return-to-decide-1280")
        await staff.click("button:text-is('同意退单')")
        await expect(staff.locator(".card").first).to_contain_text("已退回")
        await expect(staff.locator("button:text-is('派单/改派')")).to_be_visible()
        await check(staff, "console-return-approved-1280")
        await staff.set_viewport_size({"width": 390, "height": 844})
        await check(staff, "console-return-approved-390")
        await browser.close()

    statuses = {o.code: o.status for o in await orders_of(wechat)}
    assert statuses == {
        impossible: OrderStatus.NOT_POSSIBLE,
        not_ours: OrderStatus.MISROUTED,
        give_back: OrderStatus.RETURNED,
    }
    assert any("楼体裂缝" in t for t in await outbox_texts(wechat, "o_a"))
    assert any("退单已同意" in t for t in await outbox_texts(wechat, "property"))
    assert len(seen) == 8
