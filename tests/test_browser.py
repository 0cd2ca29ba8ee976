"""In a real browser (Playwright driving Debian's Chromium): place an order in the
simulator, accept and complete it in the unit portal, and see it on the board, in
the evaluation and on the public page. Screenshots of the main pages at 1280 px and
390 px are saved under ``test-artifacts/screenshots`` (not committed).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; never ``playwright
install``). Without it the test is skipped, unless ORDER_MENU_REQUIRE_BROWSER=1 (CI)
makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.ordering_catalog import write_catalog
from tests.test_console import PASSWORD, add_user
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("ORDER_MENU_REQUIRE_BROWSER") not in (None, "", "0"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip("no Chromium (apt-get install chromium)")
    return CHROMIUM


async def log_in(page: Any, base: str, username: str) -> None:
    """A user logs in on ``page`` through the login form, as a person would."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")


async def test_an_order_from_the_simulator_to_the_public_page(
    db_url: str, aiohttp_client: Client, tmp_path: Path, chromium: str, backend: str
) -> None:
    from playwright.async_api import async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "property1", "unit", "property")
    await add_user(wechat, "staff1", "staff")
    base = str(wechat.client.make_url("")).rstrip("/")
    shots = ARTIFACTS / backend
    shots.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        resident = await browser.new_page(viewport={"width": 390, "height": 844})
        await resident.goto(f"{base}/simulator")
        for line, expected in (
            ("水管爆了", "哪栋楼"),
            ("3栋2单元", "手机号码"),
            ("13812345678", "请核对"),
            ("确认", "订单号："),
        ):
            await resident.fill("#line", line)
            await resident.click("form#form button")
            await expect(resident.locator(".msg.bot").last).to_contain_text(expected)
        confirmation = await resident.locator(".msg.bot").last.inner_text()
        code = re.search(r"订单号：([2-9A-Z]{6})", confirmation)[1]  # type: ignore[index]
        await resident.screenshot(path=str(shots / "simulator-390.png"), full_page=True)

        unit = await browser.new_page(viewport={"width": 1280, "height": 800})
        await unit.goto(f"{base}/portal")
        await unit.fill("input[name=username]", "property1")
        await unit.fill("input[name=password]", PASSWORD)
        await unit.click("button[type=submit]")
        await expect(unit.locator("table.orders")).to_contain_text(code)
        await unit.screenshot(path=str(shots / "portal-1280.png"), full_page=True)
        await unit.click(f"text={code}")
        for action, status in (("接单", "已接单"), ("开始服务", "服务中"), ("办结", "已完成")):
            await unit.click(f"button:text-is('{action}')")
            await expect(unit.locator(".card").first).to_contain_text(status)
        await unit.screenshot(path=str(shots / "order-1280.png"), full_page=True)

        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await staff.goto(f"{base}/login")
        await staff.fill("input[name=username]", "staff1")
        await staff.fill("input[name=password]", PASSWORD)
        await staff.click("button[type=submit]")
        await expect(staff.locator("table.orders")).to_contain_text("已完成")
        await staff.screenshot(path=str(shots / "console-1280.png"), full_page=True)
        await staff.goto(f"{base}/console/evaluation")
        await expect(staff.locator("table.ranking")).to_contain_text("阳光物业")
        # One order: counted, but too few to give a rate or a place.
        await expect(staff.locator("table.ranking")).to_contain_text("样本不足")
        await staff.screenshot(path=str(shots / "evaluation-1280.png"), full_page=True)

        public = await browser.new_page(viewport={"width": 390, "height": 844})
        await public.goto(f"{base}/public")
        await expect(public.locator("body")).to_contain_text("阳光物业")
        # Counted: one order dispatched to the property company, completed; one order
        # is too few for a rate.
        figures = public.locator(".card", has_text="阳光物业").locator("table.figures")
        await expect(figures).to_contain_text("样本不足")
        await expect(figures).to_contain_text("1单")
        await expect(public.locator("body")).not_to_contain_text("13812345678")
        await public.screenshot(path=str(shots / "public-390.png"), full_page=True)
        await public.set_viewport_size({"width": 1280, "height": 800})
        await public.screenshot(path=str(shots / "public-1280.png"), full_page=True)
        await browser.close()


async def test_the_evaluation_charts_draw_in_chinese(
    db_url: str, aiohttp_client: Client, tmp_path: Path, chromium: str, backend: str
) -> None:
    """Two months of orders (five or more per unit and month; two for the law firm):
    trend lines over the period and bars for one month are drawn (SVG shapes of
    non-zero size, no script, nothing from elsewhere), the law firm shows 样本不足
    with no place, and neither the evaluation nor the 公示 page shows an English word
    or an internal id."""
    from playwright.async_api import async_playwright, expect

    from bot import keys
    from tests.fake_clock import FakeClock
    from tests.test_evaluation import add_orders, orders_of
    from tests.test_staff_pages_chinese import ALLOWED, INTERNAL_IDS
    from tests.visible_text import english_words

    clock = FakeClock.at("2026-12-15 10:00")
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path), clock=clock)
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await add_orders(session, "home-repair", orders_of("P", 6, day="2026-10-12"))
        await add_orders(session, "home-repair", orders_of("Q", 5, day="2026-11-02"))
        await add_orders(session, "home-repair", orders_of("R", 7, day="2026-12-01"))
        await add_orders(session, "free-clinic", orders_of("C", 5, day="2026-11-03"))
        late = [(code, 3, events[:1]) for code, _, events in orders_of("D", 5, "2026-12-02")]
        await add_orders(session, "free-clinic", late)  # never accepted: failures
        await add_orders(session, "legal-consult", orders_of("L", 2, day="2026-12-03"))
    await add_user(wechat, "staff1", "staff")
    base = str(wechat.client.make_url("")).rstrip("/")
    shots = ARTIFACTS / backend
    shots.mkdir(parents=True, exist_ok=True)

    async def shown_words(page: object) -> list[str]:
        text = await page.locator("body").inner_text()  # type: ignore[attr-defined]
        return english_words(text, ALLOWED) + INTERNAL_IDS.findall(text)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        requests: list[str] = []
        staff.on("request", lambda r: requests.append(r.url))
        await staff.goto(f"{base}/login")
        await staff.fill("input[name=username]", "staff1")
        await staff.fill("input[name=password]", PASSWORD)
        await staff.click("button[type=submit]")
        await staff.goto(f"{base}/console/evaluation?months=3")
        ranking = staff.locator("table.ranking")
        await expect(ranking.locator("tr", has_text="共建律师事务所")).to_contain_text("样本不足")
        await expect(ranking.locator("tr", has_text="阳光物业").locator("td").first).to_have_text(
            "1"
        )
        charts = staff.locator("svg.chart.line")
        assert await charts.count() == 4
        for i in range(4):
            lines = charts.nth(i).locator("path")
            assert await lines.count() >= 1
            box = await lines.first.bounding_box()
            assert box is not None and box["width"] > 100, box
        assert await staff.locator("script").count() == 0
        assert all(url.startswith(base) for url in requests), requests
        assert await shown_words(staff) == []
        await staff.screenshot(path=str(shots / "evaluation-trend-1280.png"), full_page=True)

        await staff.click("text=一个月")
        bars = staff.locator("svg.chart.bars rect[fill]:not([width='14'])")
        assert await bars.count() >= 4  # property's three rates, the clinic's response
        for i in range(await bars.count()):
            box = await bars.nth(i).bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, box
        await expect(staff.locator("svg.chart.bars")).to_contain_text("样本不足")
        assert await shown_words(staff) == []
        await staff.screenshot(path=str(shots / "evaluation-month-1280.png"), full_page=True)
        await staff.set_viewport_size({"width": 390, "height": 844})
        await staff.screenshot(path=str(shots / "evaluation-month-390.png"), full_page=True)

        public = await browser.new_page(viewport={"width": 390, "height": 844})
        await public.goto(f"{base}/public")
        await expect(public.locator("table.grids")).to_contain_text("第一网格")
        await expect(public.locator("body")).to_contain_text("样本不足")
        assert await shown_words(public) == []
        await public.screenshot(path=str(shots / "public-board-390.png"), full_page=True)
        await browser.close()
