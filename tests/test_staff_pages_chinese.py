"""Every screen a resident, staff member or unit member sees is Chinese: pages, the
answers to mistakes (400, 403, 404, 405, 409), and the exports staff open.

Operators keep English where they read: the ``serve`` banner and the log.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot import keys
from bot.serve import banner
from storage import models
from tests.test_console import CSRF, login, make_site
from tests.test_ordering import say
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SCRIPT = {"Accept": "*/*"}
ALLOWED = frozenset({"CSV", "Excel"})
"""The two export formats on the evaluation page, named as staff's spreadsheet
program names them; there is no Chinese word for either that staff would know."""
INVITE_CODES = re.compile(r"(?<![A-Za-z0-9])[2-9A-Z]{10}(?![A-Za-z0-9])")
"""A grid worker's invite code, shown once on the visits page (it may be all letters)."""
INTERNAL_IDS = re.compile(r"(?<![A-Za-z0-9])(g1|g2)(?![A-Za-z0-9])")
"""The test catalog's grid ids (all its other ids are English words, caught anyway)."""


@dataclass
class Visit:
    who: str
    method: str
    path: str
    status: int
    data: dict[str, str] = field(default_factory=dict)
    """Form fields; ``csrf`` is filled in."""


@pytest.fixture
async def site(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> tuple[WeChatServer, str, str]:
    wechat, repair, secret = await make_site(db_url, aiohttp_client, tmp_path)
    await say(wechat, "o_res", "转人工")  # a resident waiting for a person
    await say(wechat, "o_other", "我想学弹钢琴")  # a need no item meets
    return wechat, repair, secret


def visits(repair: str, secret: str) -> list[Visit]:
    order = f"/console/orders/{repair}"
    broadcast = {"topic": "anti-fraud", "title": "反诈提醒", "text": "陌生来电一律挂断。"}
    proxy = {"item": "allowance", "name": "张奶奶", "phone": "13800001234", "consent": "yes"}
    group = {"name": "三栋住户群", "grid": "g1", "buildings": "3栋、4栋"}
    ticks = "/console/broadcasts/1/groups"  # the first notice's kit: which groups it went to
    return [
        # Anyone.
        Visit("-", "GET", "/", 200),
        Visit("-", "GET", "/services", 200),
        Visit("-", "GET", "/public", 200),
        Visit("-", "GET", "/login", 200),
        Visit("-", "POST", "/login", 401, {"username": "staff1", "password": "wrong"}),
        Visit("-", "GET", "/no/such/page", 404),
        Visit("-", "GET", "/public/nowhere", 404),
        Visit("-", "PUT", "/services", 405),
        # Community staff.
        Visit("staff1", "POST", "/console/broadcasts", 302, {**broadcast, "confirm": "yes"}),
        Visit(
            "staff1",
            "POST",
            "/console/broadcasts",
            302,
            {**broadcast, "title": "每天提醒", "cron": "0 10 * * *", "confirm": "yes"},
        ),
        Visit(
            "staff1", "POST", "/console/broadcasts", 200, {**broadcast, "at": "2026-12-24 10:00"}
        ),
        Visit("staff1", "POST", "/console/broadcasts", 400, {**broadcast, "topic": "lottery"}),
        Visit("staff1", "POST", "/console/broadcasts", 400, {**broadcast, "cron": "every day"}),
        Visit("staff1", "POST", "/console/broadcasts", 400, {**broadcast, "at": "tomorrow"}),
        Visit("staff1", "POST", "/console/broadcasts", 400, {**broadcast, "title": "长" * 41}),
        Visit("staff1", "GET", "/console/broadcasts", 200),
        Visit("staff1", "POST", "/console/groups", 302, group),
        Visit("staff1", "POST", "/console/groups", 400, {**group, "name": ""}),
        Visit("staff1", "POST", "/console/groups", 400, group),  # the name is taken
        Visit("staff1", "POST", "/console/groups", 400, {**group, "buildings": " "}),
        Visit("staff1", "POST", "/console/groups/1", 400, {**group, "grid": "nowhere"}),
        Visit("staff1", "POST", "/console/groups/999", 404, group),
        Visit("staff1", "POST", ticks, 302, {"group": "1", "posted": "yes"}),
        Visit("staff1", "POST", ticks, 400, {"group": "1", "posted": "ok"}),
        Visit("staff1", "POST", ticks, 404, {"group": "9", "posted": "no"}),
        Visit("staff1", "POST", "/console/broadcasts/99/groups", 404, {"group": "1"}),
        Visit("staff1", "GET", "/console/broadcasts/1/kit", 200),
        Visit("staff1", "GET", "/console/broadcasts/99/kit", 404),
        Visit("staff1", "GET", "/console/groups", 200),
        Visit("staff1", "POST", f"{order}/dispatch", 302, {"unit": "law"}),
        Visit("staff1", "POST", f"{order}/dispatch", 400, {"unit": "nobody"}),
        Visit("staff1", "POST", f"{order}/return", 403, {"note": "not mine"}),
        Visit("staff1", "POST", f"{order}/escalate", 302),
        Visit("staff1", "POST", f"{order}/escalate", 409),
        Visit("staff1", "GET", order, 200),
        Visit("staff1", "GET", "/console/orders/ZZZZZZ", 404),
        Visit("staff1", "POST", "/console/proxy", 400, {**proxy, "phone": "123"}),
        Visit("staff1", "POST", "/console/proxy", 400, {**proxy, "item": "health-lecture"}),
        Visit("staff1", "POST", "/console/proxy", 400, {**proxy, "item": "integrity-report"}),
        Visit("staff1", "POST", "/console/proxy", 400, {**proxy, "people": "many"}),
        Visit("staff1", "GET", "/console", 200),
        Visit("staff1", "GET", "/console?page=abc", 400),
        Visit("staff1", "GET", "/console?date=0001-01-01", 400),
        Visit("staff1", "GET", "/console?status=dispatched&grid=g1", 200),
        Visit("staff1", "GET", "/console/handoffs", 200),
        Visit("staff1", "POST", "/console/handoffs/1/answer", 400, {"text": "长" * 601}),
        Visit("staff1", "POST", "/console/handoffs/999/answer", 404, {"text": "您好"}),
        Visit("staff1", "POST", "/console/handoffs/abc/answer", 404, {"text": "您好"}),
        Visit("staff1", "GET", "/console/needs", 200),
        Visit("staff1", "GET", "/console/evaluation", 200),
        Visit("staff1", "GET", "/console/catalog", 200),
        Visit("staff1", "GET", "/console/audit", 403),
        Visit("staff1", "GET", "/console/visits", 200),
        Visit("staff1", "POST", "/console/visits/invite", 200, {"grid": "g1"}),
        Visit("staff1", "POST", "/console/visits/invite", 400, {"grid": "nowhere"}),
        Visit("staff1", "POST", "/console/visits/households", 400),
        Visit("staff1", "POST", "/console/visits/tasks/999/done", 404),
        Visit("staff1", "GET", "/portal", 403),
        Visit("staff1", "GET", "/console/nothing", 404),
        Visit("staff1", "POST", "/logout", 403, {"csrf": "stale"}),
        # A unit member.
        Visit("lawyer1", "POST", f"{order}/accept", 302),
        Visit("lawyer1", "POST", f"{order}/accept", 409),
        Visit("lawyer1", "POST", f"{order}/return", 400),
        Visit("lawyer1", "POST", f"{order}/close", 403),
        Visit("lawyer1", "GET", order, 200),
        Visit("lawyer1", "GET", "/portal", 200),
        Visit("lawyer1", "GET", "/console", 403),
        Visit("lawyer1", "GET", "/console/visits", 403),
        Visit("lawyer1", "GET", "/console/broadcasts/1/kit", 403),
        Visit("lawyer1", "POST", "/console/groups", 403, {"name": "群", "buildings": "1栋"}),
        # Admin.
        Visit("admin1", "POST", "/console/catalog", 400, {"yaml": " "}),
        Visit("admin1", "GET", f"/console/orders/{secret}", 200),
        Visit("admin1", "POST", f"/console/orders/{secret}/close", 302),
        Visit("admin1", "POST", f"/console/orders/{secret}/close", 409),
        Visit("admin1", "GET", "/console/audit", 200),
    ]


async def test_no_english_or_internal_ids_on_any_screen(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, repair, secret = site
    browsers: dict[str, aiohttp.ClientSession] = {}
    seen: list[tuple[str, str]] = []
    try:
        for visit in visits(repair, secret):
            if visit.who not in browsers:
                browsers[visit.who] = (
                    await login(wechat, visit.who)
                    if visit.who != "-"
                    else aiohttp.ClientSession(
                        base_url=str(wechat.client.make_url("/")),
                        cookie_jar=aiohttp.CookieJar(unsafe=True),
                    )
                )
            browser = browsers[visit.who]
            data = dict(visit.data)
            if visit.who != "-":
                home = "/portal" if visit.who == "lawyer1" else "/console"
                page = await (await browser.get(home)).text()
                found = CSRF.search(page)
                data.setdefault("csrf", found[1] if found else "")
            # As a browser asks (a page), and as a script asks (the same words, as text).
            for headers in (BROWSER, SCRIPT):
                reply = await browser.request(
                    visit.method,
                    visit.path,
                    data=data or None,
                    headers=headers,
                    allow_redirects=False,
                )
                body = await reply.text()
                where = f"{visit.who} {visit.method} {visit.path} {visit.data}"
                assert reply.status == visit.status, (where, reply.status, body[:300])
                if reply.status < 300 or reply.status >= 400:
                    seen.append((where, visible_text(body, reply.content_type)))
                if visit.method == "POST" and visit.status == 302:
                    break  # a change: made once (the second click is a visit of its own)
        # A new catalog imported: what changed, said with names.
        admin = browsers["admin1"]
        current = await (await admin.get("/console/catalog.yaml")).text()
        renamed = current.replace("title: 水电维修", "title: 家庭水电维修", 1)
        token = CSRF.search(await (await admin.get("/console/catalog")).text())[1]  # type: ignore[index]
        imported = await admin.post(
            "/console/catalog", data={"csrf": token, "yaml": renamed}, headers=BROWSER
        )
        shown = visible_text(await imported.text())
        assert imported.status == 200 and "服务项目：修改 1 个（家庭水电维修）" in shown, shown
        seen.append(("admin1 POST /console/catalog (import)", shown))
        audit = await admin.get("/console/audit", headers=BROWSER)
        seen.append(("admin1 GET /console/audit (after import)", visible_text(await audit.text())))
    finally:
        for browser in browsers.values():
            await browser.close()

    assert len(seen) > len(visits(repair, secret)), "every page and refusal was read"
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        codes = set(await session.scalars(select(models.Order.code)))
    problems = []
    for where, text in seen:
        for code in codes:  # an order's code is what staff and residents quote
            text = text.replace(code, "")
        text = INVITE_CODES.sub("", text)
        words = english_words(text, ALLOWED) + INTERNAL_IDS.findall(text)
        if words:
            problems.append(f"{where}: {words} in {text[:200]!r}")
    assert not problems, "\n".join(problems)


async def test_the_operators_banner_keeps_english_names(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    text = banner(wechat.client.app, "https://bot.example.org")
    assert "首页 Front page" in text and "工作台 Staff console" in text


async def test_a_second_click_on_close_is_answered_politely(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, repair, _ = site
    staff = await login(wechat, "staff1")
    page = await (await staff.get(f"/console/orders/{repair}")).text()
    token = CSRF.search(page)[1]  # type: ignore[index]
    clicks = [
        await staff.post(
            f"/console/orders/{repair}/close",
            data={"csrf": token},
            headers=BROWSER,
            allow_redirects=False,
        )
        for _ in range(2)
    ]
    assert clicks[0].status == 302
    second = await clicks[1].text()
    assert clicks[1].status == 409, second[:300]
    shown = visible_text(second)
    assert "这个订单已经关闭了。" in shown and "状态： 已关闭" in shown, shown
    await staff.close()


async def test_refusals_and_missing_pages_are_chinese_pages_with_a_way_back(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    staff = await login(wechat, "staff1")
    token = CSRF.search(await (await staff.get("/console")).text())[1]  # type: ignore[index]
    for method, path, data, status, words in (
        ("POST", "/console/handoffs/999/answer", {"text": "您好"}, 404, "没有找到这位居民的留言"),
        ("GET", "/console/nothing", None, 404, "没有找到您要的页面。"),
        ("DELETE", "/console", None, 405, "这个页面不能这样打开。"),
        ("POST", "/console/handoffs/1/answer", {"text": "长" * 601}, 400, "回复请写 1 到 600 个字"),
        ("POST", "/console/proxy", {"note": "长" * 1_000_000}, 413, "提交的内容太多了"),
    ):
        reply = await staff.request(
            method, path, data={**data, "csrf": token} if data else None, headers=BROWSER
        )
        shown = visible_text(await reply.text())
        assert reply.status == status and words in shown, (path, reply.status, shown)
        assert "回到工作台" in shown, shown
        plain = await staff.request(
            method, path, data={**data, "csrf": token} if data else None, headers=SCRIPT
        )
        assert plain.status == status and words in await plain.text(), path
    await staff.close()


async def test_the_evaluation_csv_and_workbook_have_the_same_chinese_header(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    staff = await login(wechat, "staff1")
    text = (await (await staff.get("/console/evaluation?format=csv")).read()).decode("utf-8-sig")
    csv_header = next(csv.reader(io.StringIO(text)))
    book = await (await staff.get("/console/evaluation?format=xlsx")).read()
    sheet = load_workbook(io.BytesIO(book)).active
    assert sheet is not None
    xlsx_header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    assert csv_header == xlsx_header
    assert csv_header[:3] == ["月份", "单位", "派单"] and "响应率(%)" in csv_header
    await staff.close()


LINK = re.compile(r'href="(/[^"#]*)"')
SKIPPED = (
    "/logout",
    "/console/catalog.yaml",  # the catalog file itself, in its (English-keyed) format
)
CRAWL_LIMIT = 300
"""Pages read per role at most."""
VARIANTS = 30
"""Addresses read per page with different queries (a filter, a page, a period): the
evaluation's 更早 links alone lead back month by month for ever."""


GET_FORM = re.compile(r'<form method="get" action="(/[^"#]*)"[^>]*>(.*?)</form>', re.S)
SELECT = re.compile(r'<select name="([^"]+)"[^>]*>(.*?)</select>', re.S)


def get_forms(body: str) -> list[str]:
    """The addresses a page's search forms lead to: each choice of each list on its own."""
    found = []
    for action, inside in GET_FORM.findall(body):
        for name, options in SELECT.findall(inside):
            for value in re.findall(r'<option value="([^"]+)"', options):
                found.append(f"{action}?{urlencode({name: value.replace('&amp;', '&')})}")
    return found


async def crawl(
    browser: aiohttp.ClientSession, start: str
) -> tuple[dict[str, str], dict[str, bytes]]:
    """Every page reachable by links from ``start`` that the role may open: its visible
    text by address; and each file to download (an export) linked, by address."""
    pages: dict[str, str] = {}
    exports: dict[str, bytes] = {}
    queue, seen = [start], {start}
    variants: dict[str, int] = {}
    while queue and len(pages) < CRAWL_LIMIT:
        path = queue.pop(0)
        reply = await browser.get(path, headers=BROWSER)
        if "attachment" in reply.headers.get("Content-Disposition", ""):
            assert reply.status == 200, path
            exports[path] = await reply.read()
            continue
        body = await reply.text()
        assert reply.status == 200, (path, reply.status, visible_text(body)[:300])
        pages[path] = visible_text(body, reply.content_type)
        if "html" not in reply.content_type:
            continue
        for link in [*LINK.findall(body), *get_forms(body)]:
            link = link.replace("&amp;", "&")
            base = link.partition("?")[0]
            if (
                link in seen
                or link.startswith(SKIPPED)
                or not link.startswith(("/console", "/portal", "/public", "/services"))
                or variants.get(base, 0) >= VARIANTS
            ):
                continue
            seen.add(link)
            variants[base] = variants.get(base, 0) + 1
            queue.append(link)
    return pages, exports


async def test_every_page_staff_and_units_reach_is_chinese(
    site: tuple[WeChatServer, str, str],
) -> None:
    """Crawl the console as staff and as admin, and the portal as unit members, after
    a little of everything happened (a 代办, notices in words and as an old crontab
    line, a 转人工 thread with a reply): no English word, internal id or parameter
    name on any page or export header, except inside ``<code>``."""
    wechat, _, _ = site
    await say(wechat, "o_res", "灯还是不亮")  # into the open 转人工 thread
    staff = await login(wechat, "staff1")
    token = CSRF.search(await (await staff.get("/console")).text())[1]  # type: ignore[index]
    notice = {"csrf": token, "topic": "drowning", "title": "防溺水", "text": "看好孩子。"}
    for extra in ({"every": "每周五上午10点"}, {"cron": "0 9 1 * *"}, {"cron": "*/30 8-9 * * *"}):
        made = await staff.post(
            "/console/broadcasts", data={**notice, **extra, "confirm": "yes"}, allow_redirects=False
        )
        assert made.status == 302, await made.text()
    placed = await staff.post(
        "/console/proxy",
        data={
            "csrf": token,
            "session": "health-lecture@first",
            "name": "张奶奶",
            "phone": "13800001234",
            "consent": "yes",
        },
        allow_redirects=False,
    )
    assert placed.status == 302, await placed.text()
    handoffs = await (await staff.get("/console/handoffs")).text()
    handoff = re.search(r"/console/handoffs/(\d+)/answer", handoffs)
    assert handoff is not None
    await staff.post(
        f"/console/handoffs/{handoff[1]}/answer", data={"csrf": token, "text": "马上去看。"}
    )
    await staff.close()

    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        codes = set(await session.scalars(select(models.Order.code)))
    problems: list[str] = []
    read = 0
    for who, start in (
        ("staff1", "/console"),
        ("admin1", "/console"),
        ("lawyer1", "/portal"),
        ("property1", "/portal"),
    ):
        browser = await login(wechat, who)
        try:
            pages, exports = await crawl(browser, start)
        finally:
            await browser.close()
        read += len(pages)
        # The unit with the repair order sees it too; staff see every console page.
        least = {"staff1": 8, "admin1": 9, "property1": 2, "lawyer1": 1}[who]
        assert len(pages) >= least, pages.keys()
        for path, text in pages.items():
            for code in codes:
                text = text.replace(code, "")
            words = english_words(text, ALLOWED) + INTERNAL_IDS.findall(text)
            if words:
                problems.append(f"{who} {path}: {sorted(set(words))} in {text[:300]!r}")
        for path, data in exports.items():
            if data.startswith(b"\x89PNG"):
                continue  # a campaign poster: an image (tests/test_campaign_kit.py reads it)
            if data[:2] == b"PK":  # a workbook
                sheet = load_workbook(io.BytesIO(data)).active
                assert sheet is not None
                header = " ".join(str(c.value) for c in next(sheet.iter_rows(max_row=1)))
            else:
                header = data.decode("utf-8-sig").splitlines()[0]
            # Stricter than a page: no Latin letters at all (单位ID is no Chinese header).
            latin = set(re.findall(r"[A-Za-z]+", header)) - ALLOWED
            if latin:
                problems.append(f"{who} {path}: {sorted(latin)} in header {header!r}")
        assert who.startswith(("lawyer", "property")) or len(exports) >= 4, exports.keys()
    assert read > 20
    assert not problems, "\n".join(problems)
