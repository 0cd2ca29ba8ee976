"""回访 and the honest outcomes, end to end through the real /wechat webhook and the
console over HTTP: completion → 回访 → 没解决 reopens the order to the same unit (told
once, however often WeChat retries the message) and counts against 解决率; 解决了
stops the reminder; the second 回访 comes once; staff approve or refuse a 退单."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from bot import keys
from storage.order_status import OrderStatus
from storage.repositories.evaluation import Rules, unit_months
from tests.fake_clock import FakeClock
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import orders_of, say
from tests.test_reminders import MONDAY, bot, tick
from tests.test_units import invite, outbox_texts, place
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

ZONE = ZoneInfo("Asia/Shanghai")


async def completed(wechat: WeChatServer, db_url: str, resident: str, worker: str) -> str:
    code = await place(wechat, resident)
    await say(wechat, worker, f"绑定 {await invite(db_url, 'property')}")
    await say(wechat, worker, f"接单 {code}", f"开始 {code}")
    assert "已完成" in await say(wechat, worker, f"完成 {code} 换了新水管")
    return code


async def resolution(wechat: WeChatServer) -> float | None:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        # One order: the minimum sample is 1 here, so its rate is shown.
        rules = Rules(now=dt.datetime.now(dt.UTC), min_sample=1)
        [month] = await unit_months(session, "testville", ZONE, rules, unit="property")
    return month.resolution_rate


async def shown(browser: aiohttp.ClientSession, path: str, code: str) -> str:
    """The page as a person sees it: no English words (an order's code may be all
    letters: that one is allowed)."""
    reply = await browser.get(path)
    assert reply.status == 200, path
    text = visible_text(await reply.text())
    assert english_words(text, frozenset({code})) == [], (path, english_words(text))
    return text


async def test_not_solved_at_the_followup_reopens_the_order_to_the_same_unit_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    wechat = await bot(aiohttp_client, db_url, tmp_path, clock)
    code = await completed(wechat, db_url, "o_leak", "o_fixer")
    [done] = [t for t in await outbox_texts(wechat, "o_leak") if "办好了" in t]
    assert "解决了吗" in done and "没解决" in done and "换了新水管" in done
    clock.advance(hours=2, minutes=1)
    await tick(wechat)
    [followup] = [t for t in await outbox_texts(wechat, "o_leak") if t.startswith("回访")]
    assert "解决了吗" in followup and "不打也没关系" in followup
    assert await resolution(wechat) == 1.0

    # 没解决, in the resident's own words; WeChat retries the same message.
    first = await wechat.text("o_leak", "还是不行，厨房还在漏", msg_id=424242)
    again = await wechat.text("o_leak", "还是不行，厨房还在漏", msg_id=424242)
    assert "重新交给阳光物业" in first.text and again.text == first.text
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.REOPENED
    told = [t for t in await outbox_texts(wechat, "property") if "【重办】" in t]
    assert len(told) == 1, told  # the unit is told again, exactly once
    assert code in told[0] and "厨房还在漏" in told[0] and f"完成 {code}" in told[0]
    assert [t for t in await outbox_texts(wechat, "community") if "【重办】" in t]
    assert await resolution(wechat) == 0.0  # counts against 解决率 until done again

    # Visible on the order, for staff and the unit, in Chinese.
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    for who in ("staff1", "property1"):
        async with await login(wechat, who) as browser:
            page = await shown(browser, f"/console/orders/{code}", code)
            assert "已重办" in page and "厨房还在漏" in page and "居民" in page

    # The unit goes back and finishes it: solved again.
    assert "已接单" in await say(wechat, "o_fixer", f"接单 {code}")
    await say(wechat, "o_fixer", f"开始 {code}", f"完成 {code} 换了阀门")
    assert await resolution(wechat) == 1.0


async def test_solved_stops_the_followup_and_the_second_one_comes_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    clock = FakeClock.at(MONDAY)
    catalog = write_catalog(tmp_path, today=clock.now().astimezone(ZONE).date())
    wechat = await start(
        aiohttp_client,
        db_url,
        catalog_path=catalog,
        clock=clock,
        scheduler_interval=60,
        followup_again_days=7,
    )
    code = await completed(wechat, db_url, "o_ok", "o_fixer2")
    thanks = await say(wechat, "o_ok", "解决了")
    assert "办好了就好" in thanks and "不打也没关系" in thanks
    assert "5分" in await say(wechat, "o_ok", "5")
    clock.advance(hours=2, minutes=1)
    await tick(wechat)
    assert not [t for t in await outbox_texts(wechat, "o_ok") if t.startswith("回访")]

    clock.advance(days=7)
    await tick(wechat)
    await tick(wechat)
    again = [t for t in await outbox_texts(wechat, "o_ok") if t.startswith("回访")]
    assert len(again) == 1 and "还好吗" in again[0] and "不用回复" in again[0]
    # Rated before, it can still be reopened.
    assert "重新交给" in await say(wechat, "o_ok", "没解决，又漏了")
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.REOPENED and order.code == code


async def test_staff_decide_a_return_in_the_console(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    code = await place(wechat, "o_res")
    await say(wechat, "o_w", f"绑定 {await invite(db_url, 'property')}", f"接单 {code}")
    assert "退单申请" in await say(wechat, "o_w", f"退单 {code} 配件要等一个月")

    async with await login(wechat, "staff1") as browser:
        board = await shown(browser, "/console", code)
        assert "1 个退单申请等您审核" in board
        page = await shown(browser, f"/console/orders/{code}", code)
        assert "配件要等一个月" in page and "同意退单" in page and "不同意退单" in page
        assert "派单/改派" not in page  # decide first

        csrf = await csrf_of(browser, f"/console/orders/{code}")
        refused = await browser.post(
            f"/console/orders/{code}/refuse_return",
            data={"csrf": csrf, "note": "先跟居民商量换个型号"},
            allow_redirects=False,
        )
        assert refused.status == 302
        [order] = await orders_of(wechat)
        assert order.status == OrderStatus.ACCEPTED  # back with the unit, as it was
        [no] = [t for t in await outbox_texts(wechat, "property") if "退单未同意" in t]
        assert "换个型号" in no and "仍由贵单位办理" in no

        assert "退单申请" in await say(wechat, "o_w", f"退单 {code} 真的没有配件")
        csrf = await csrf_of(browser, f"/console/orders/{code}")
        approved = await browser.post(
            f"/console/orders/{code}/approve_return", data={"csrf": csrf}, allow_redirects=False
        )
        assert approved.status == 302
        [order] = await orders_of(wechat)
        assert order.status == OrderStatus.RETURNED
        assert [t for t in await outbox_texts(wechat, "property") if "退单已同意" in t]
        assert [t for t in await outbox_texts(wechat, "o_res") if "重新安排" in t]
        # A second click is told it is done, not an error page.
        twice = await browser.post(
            f"/console/orders/{code}/approve_return", data={"csrf": csrf}, allow_redirects=False
        )
        assert twice.status == 409 and "已经退回了" in visible_text(await twice.text())
        page = await shown(browser, f"/console/orders/{code}", code)
        assert "派单/改派" in page and "退单待批" in page
