"""In a real browser (Playwright driving Debian's Chromium): staff schedule a weekly
notice in words with the form's widgets, answer a resident's 转人工 as a thread (the
resident's later message through the /wechat webhook arrives in it; the reply does
not close it; 结束对话 does), and place a 代办 whose wrong phone keeps what was
typed. Every page seen is checked for English words and internal ids; screenshots
are saved under ``test-artifacts/screenshots/<backend>/`` (not committed).

Needs ``/usr/bin/chromium``; see tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot import keys
from storage import models
from tests.ordering_catalog import write_catalog
from tests.test_browser import ARGS, ARTIFACTS, chromium, log_in  # noqa: F401 (fixture)
from tests.test_console import add_user
from tests.test_ordering import say
from tests.test_staff_pages_chinese import ALLOWED, INTERNAL_IDS
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start

pytestmark = pytest.mark.browser


async def test_a_notice_in_words_a_handoff_thread_and_a_proxy_order(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    chromium: str,  # noqa: F811 (the fixture imported above)
    backend: str,
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    base = str(wechat.client.make_url("")).rstrip("/")
    shots = ARTIFACTS / backend
    shots.mkdir(parents=True, exist_ok=True)

    async def check(page: Page, name: str) -> None:
        """No English word or internal id on the page as shown; a screenshot kept."""
        async with wechat.client.app[keys.SESSIONMAKER]() as session:
            codes = set(await session.scalars(select(models.Order.code)))  # quoted as they are
        text = visible_text(await page.content())
        words = english_words(text, ALLOWED | codes) + INTERNAL_IDS.findall(text)
        assert not words, (name, words, text[:300])
        await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=ARGS
        )
        staff = await browser.new_page(viewport={"width": 1280, "height": 800})
        await log_in(staff, base, "staff1")

        # A weekly notice, chosen with the widgets.
        await staff.goto(f"{base}/console/broadcasts")
        await staff.select_option("select[name=topic]", label="防溺水")
        await staff.fill("input[name=title]", "防溺水提醒")
        await staff.fill("textarea[name=text]", "暑假看好孩子，不去河边玩水。")
        await staff.select_option("select[name=repeat]", label="每周")
        await staff.select_option("select[name=weekday]", label="周五")
        await staff.fill("input[name=time]", "10:00")
        await staff.click("button:text-is('预览')")
        await expect(staff.locator(".card").first).to_contain_text("定期：每周五上午10点")
        await check(staff, "broadcast-preview-1280")
        await staff.click("button:text-is('确认发送')")
        record = staff.locator(".card", has_text="防溺水提醒")
        await expect(record).to_contain_text("每周五上午10点，下次")
        await expect(record).to_contain_text("周五")
        await check(staff, "broadcasts-1280")

        # A resident asks for a person, staff answer, the resident writes again.
        await say(wechat, "o_res", "转人工 楼道灯坏了好几天了")
        await staff.goto(f"{base}/console/handoffs")
        thread = staff.locator(".handoff").first
        await expect(thread).to_contain_text("楼道灯坏了好几天了")
        await thread.locator("textarea[name=text]").fill("您好，是哪一栋？")
        await thread.locator("button:text-is('回复')").click()
        await expect(staff.locator(".handoff").first).to_contain_text("您好，是哪一栋？")
        assert "转给社区工作人员" in await say(wechat, "o_res", "5栋3单元")
        await staff.reload()
        thread = staff.locator(".handoff").first
        await expect(thread.locator(".said").last).to_contain_text("5栋3单元")
        await check(staff, "handoff-thread-1280")
        await staff.set_viewport_size({"width": 390, "height": 844})
        await staff.screenshot(path=str(shots / "handoff-thread-390.png"), full_page=True)
        await staff.set_viewport_size({"width": 1280, "height": 800})
        await thread.locator("button:text-is('结束对话')").click()
        await expect(staff.locator("body")).to_contain_text("没有等待回复的居民")

        # A 代办 with a slot from the list and a wrong phone: everything typed stays.
        await staff.goto(f"{base}/console")
        await staff.fill("input[name=name]", "张奶奶")
        await staff.fill("input[name=phone]", "138001")
        await staff.fill("input[name=building]", "7栋2单元")
        session = staff.locator("select[name=session] option", has_text="健康知识讲座").first
        chosen = await session.get_attribute("value")
        assert chosen and "还剩 10 个名额" in await session.inner_text()
        await staff.select_option("select[name=session]", value=chosen)
        await staff.click("button:text-is('代办下单')")
        await expect(staff.locator(".field-error[data-field=phone]")).to_contain_text(
            "手机号码不对"
        )
        await expect(staff.locator("input[name=name]")).to_have_value("张奶奶")
        await expect(staff.locator("input[name=building]")).to_have_value("7栋2单元")
        await expect(staff.locator("select[name=session]")).to_have_value(chosen)
        await check(staff, "proxy-refused-1280")
        await staff.fill("input[name=phone]", "13800001234")
        await staff.click("button:text-is('代办下单')")  # not yet told and agreed
        await expect(staff.locator(".field-error[data-field=consent]")).to_contain_text(
            "居民同意后再勾选"
        )
        await staff.check("input[name=consent]")
        await staff.click("button:text-is('代办下单')")
        await expect(staff.locator("body")).to_contain_text("健康知识讲座")
        await expect(staff.locator("body")).to_contain_text("张奶奶")
        await check(staff, "proxy-placed-1280")
        await browser.close()
