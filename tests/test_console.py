"""The web side's doors: logins, roles on every route, confidential items, CSRF."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot import keys
from storage import models
from storage.repositories.units import unit_row
from tests.ordering_catalog import write_catalog
from tests.passwords import password_hash
from tests.test_ordering import CODE, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def add_user(wechat: WeChatServer, username: str, role: str, unit: str | None = None) -> None:
    """A user of the served community (the default one), with ``PASSWORD``."""
    app = wechat.client.app
    community_id = app[keys.TENANTS].default.id
    async with app[keys.SESSIONMAKER].begin() as session:
        unit_id = None
        if unit:
            row = await unit_row(session, community_id, unit)
            assert row is not None
            unit_id = row.id
        session.add(
            models.User(
                community_id=community_id,
                username=username,
                role=role,
                unit_id=unit_id,
                password_hash=await password_hash(PASSWORD),
            )
        )


async def login(
    wechat: WeChatServer, username: str, password: str = PASSWORD
) -> aiohttp.ClientSession:
    """A browser of its own (its own cookies), logged in."""
    browser = aiohttp.ClientSession(
        base_url=str(wechat.client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    reply = await browser.post(
        "/login", data={"username": username, "password": password}, allow_redirects=False
    )
    assert reply.status == 302, await reply.text()
    return browser


async def csrf_of(browser: aiohttp.ClientSession, path: str) -> str:
    page = await (await browser.get(path)).text()
    found = CSRF.search(page)
    assert found is not None, page[:300]
    return found[1]


@pytest.fixture
async def site(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> tuple[WeChatServer, str, str]:
    return await make_site(db_url, aiohttp_client, tmp_path)


async def make_site(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> tuple[WeChatServer, str, str]:
    """Users of every role, a resident's repair order and confidential report (codes)."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    for username, role, unit in (
        ("admin1", "admin", None),
        ("staff1", "staff", None),
        ("property1", "unit", "property"),
        ("lawyer1", "unit", "law"),
        ("discipline1", "unit", "discipline"),
    ):
        await add_user(wechat, username, role, unit)
    await say(wechat, "o_res", "水管爆了", "1栋", "13899990000")
    repair = CODE.search(await say(wechat, "o_res", "确认"))
    assert repair is not None
    reply = await say(wechat, "o_res", "物业经理收红包，吃拿卡要")
    if "是不是这一项" in reply:
        reply = await say(wechat, "o_res", "是")
    assert "廉情监督反映" in reply, reply
    reply = await say(wechat, "o_res", "1栋")  # the phone is remembered from the repair
    assert "请核对" in reply, reply
    secret = CODE.search(await say(wechat, "o_res", "确认"))
    assert secret is not None
    return wechat, repair[1], secret[1]


async def test_logging_in_and_the_rate_limit(site: tuple[WeChatServer, str, str]) -> None:
    wechat, _, _ = site
    client = wechat.client
    anonymous = await client.get("/console", allow_redirects=False)
    assert anonymous.status == 302 and anonymous.headers["Location"].startswith("/login")
    wrong = await client.post("/login", data={"username": "staff1", "password": "nope"})
    assert wrong.status == 401 and "用户名或密码不对" in await wrong.text()
    for _ in range(5):
        await client.post("/login", data={"username": "staff1", "password": "nope"})
    blocked = await client.post("/login", data={"username": "staff1", "password": PASSWORD})
    assert blocked.status == 429  # even the right password waits out the window
    browser = await login(wechat, "admin1")
    cookie = next(c for c in browser.cookie_jar if c.key == "om_session")
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert (await browser.get("/console")).status == 200
    await browser.close()


async def test_failed_logins_count_across_processes(
    site: tuple[WeChatServer, str, str], db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """Two processes on one database: failures on one block the next try on the other
    (an attacker gets 5 tries, not 5 per process)."""
    wechat, _, _ = site
    other = await start(aiohttp_client, db_url, catalog_path=tmp_path / "catalog.yaml")
    for client in (wechat.client, other.client, wechat.client, other.client, wechat.client):
        refused = await client.post("/login", data={"username": "staff1", "password": "nope"})
        assert refused.status == 401
    blocked = await other.client.post("/login", data={"username": "staff1", "password": PASSWORD})
    assert blocked.status == 429


async def test_guesses_sent_all_at_once_get_five_checks_at_most(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site

    async def guess(n: int) -> int:
        reply = await wechat.client.post(
            "/login", data={"username": "lawyer1", "password": f"guess-{n}"}
        )
        return reply.status

    statuses = await asyncio.gather(*(guess(n) for n in range(12)))
    # At most five passwords checked (all twelve may be refused when they all arrive
    # before any is counted); the rest told to wait.
    assert set(statuses) <= {401, 429} and statuses.count(401) <= 5


ROUTES = [
    ("GET", "/console", {"staff", "admin"}),
    ("GET", "/console/handoffs", {"staff", "admin"}),
    ("GET", "/console/needs", {"staff", "admin"}),
    ("GET", "/console/evaluation", {"staff", "admin"}),
    ("GET", "/console/evaluation?format=csv", {"staff", "admin"}),
    ("GET", "/console/evaluation?format=xlsx", {"staff", "admin"}),
    ("GET", "/console/catalog", {"staff", "admin"}),
    ("GET", "/console/catalog.yaml", {"staff", "admin"}),
    ("GET", "/console/broadcasts", {"staff", "admin"}),
    ("GET", "/console/audit", {"admin"}),
    ("GET", "/portal", {"unit"}),
    # Forms: the role is checked before the CSRF token (so no token is needed here).
    ("POST", "/console/proxy", {"staff", "admin"}),
    ("POST", "/console/catalog", {"admin"}),
    ("POST", "/console/broadcasts", {"staff", "admin"}),
    ("POST", "/console/handoffs/1/answer", {"staff", "admin"}),
    ("GET", "/console/privacy", {"staff", "admin"}),
    ("POST", "/console/privacy/1", {"staff", "admin"}),
]


@pytest.mark.parametrize("who", ["anonymous", "admin1", "staff1", "property1", "lawyer1"])
async def test_every_page_checks_the_role(site: tuple[WeChatServer, str, str], who: str) -> None:
    wechat, repair, _ = site
    browser: Any = wechat.client if who == "anonymous" else await login(wechat, who)
    role = {"anonymous": "-", "admin1": "admin", "staff1": "staff"}.get(who, "unit")
    for method, path, allowed in ROUTES:
        reply = await browser.request(method, path, allow_redirects=False)
        if role in allowed:
            # A page opens; a form without its CSRF token is refused as such.
            expected = 200 if method == "GET" else 403
            assert reply.status == expected, (who, path, reply.status)
            if method == "POST":
                assert "表单已过期" in await reply.text()
        else:
            assert reply.status == (302 if who == "anonymous" else 403), (who, path, reply.status)
    detail = await browser.get(f"/console/orders/{repair}", allow_redirects=False)
    expected = {"anonymous": 302, "lawyer1": 404}.get(who, 200)  # another unit: not there
    assert detail.status == expected, (who, detail.status)
    if who != "anonymous":
        await browser.close()


async def test_confidential_items_are_for_their_unit_and_admin_only(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, secret = site
    for who, sees in (
        ("staff1", False),
        ("admin1", True),
        ("discipline1", True),
        ("property1", False),
    ):
        browser = await login(wechat, who)
        home = "/portal" if who.endswith("1") and who not in ("staff1", "admin1") else "/console"
        listing = await (await browser.get(home)).text()
        assert (secret in listing) is sees, who
        detail = await browser.get(f"/console/orders/{secret}")
        assert (detail.status == 200) is sees, (who, detail.status)
        if sees:
            assert "吃拿卡要" in await detail.text()
        await browser.close()


async def test_a_unit_works_its_order_from_the_portal(site: tuple[WeChatServer, str, str]) -> None:
    wechat, repair, _ = site
    browser = await login(wechat, "property1")
    path = f"/console/orders/{repair}"
    token = await csrf_of(browser, path)
    forged = await browser.post(f"{path}/accept", data={"csrf": "forged"}, allow_redirects=False)
    assert forged.status == 403
    staff_only = await browser.post(f"{path}/close", data={"csrf": token}, allow_redirects=False)
    assert staff_only.status == 403
    accepted = await browser.post(f"{path}/accept", data={"csrf": token}, allow_redirects=False)
    assert accepted.status == 302
    again = await browser.post(f"{path}/accept", data={"csrf": token}, allow_redirects=False)
    assert again.status == 409  # already accepted: the state machine says no
    await browser.close()

    lawyer = await login(wechat, "lawyer1")
    other = await lawyer.post(
        f"{path}/start", data={"csrf": await csrf_of(lawyer, "/portal")}, allow_redirects=False
    )
    assert other.status == 404
    await lawyer.close()

    admin = await login(wechat, "admin1")
    audit = await (await admin.get("/console/audit")).text()
    assert "property1" in audit and "接单" in audit and repair in audit
    await admin.close()
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == repair))
        told = (
            await session.scalars(
                select(models.OutboxMessage.payload).where(models.OutboxMessage.target == "o_res")
            )
        ).all()
    assert order is not None and order.status == "accepted"
    assert any("已被阳光物业接单" in p["text"] for p in told)


async def test_staff_answer_a_resident_who_asked_for_a_person(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    await say(wechat, "o_res", "转人工 我的订单怎么还没人来")
    browser = await login(wechat, "staff1")
    queue = await (await browser.get("/console/handoffs")).text()
    assert "怎么还没人来" in queue
    handoff_id = re.search(r"/console/handoffs/(\d+)/answer", queue)[1]  # type: ignore[index]
    token = CSRF.search(queue)[1]  # type: ignore[index]
    answered = await browser.post(
        f"/console/handoffs/{handoff_id}/answer",
        data={"csrf": token, "text": "师傅下午两点到。"},
        allow_redirects=False,
    )
    assert answered.status == 302
    again = await browser.post(
        f"/console/handoffs/{handoff_id}/answer",
        data={"csrf": token, "text": "师傅下午两点到。"},
        allow_redirects=False,
    )
    assert again.status == 302  # a double click: answered once, sent once
    assert "师傅下午两点到" in await (await browser.get("/console/handoffs")).text()
    csv = await browser.get("/console/evaluation?format=csv")
    assert csv.content_type == "text/csv" and "响应率(%)" in await csv.text()
    await browser.close()
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        told = (
            await session.scalars(
                select(models.OutboxMessage.payload).where(models.OutboxMessage.target == "o_res")
            )
        ).all()
    assert [p["text"] for p in told].count("社区工作人员回复：师傅下午两点到。") == 1


async def test_evaluation_exports_and_the_units_own_figures(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, repair, _ = site
    staff = await login(wechat, "staff1")
    excel = await staff.get("/console/evaluation?format=xlsx")
    assert excel.status == 200 and excel.content_type.endswith("spreadsheetml.sheet")
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(await excel.read())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("月份", "单位", "派单")
    assert any(r[1] == "阳光物业" and r[2] == 1 for r in rows[1:])
    page = await (await staff.get("/console/evaluation")).text()
    # One order is too few to draw or rank (the minimum sample is five).
    assert "暂时画不出图" in page and "<svg" not in page and "样本不足" in page
    await staff.close()
    unit = await login(wechat, "property1")
    portal = await (await unit.get("/portal")).text()
    assert "水电维修" in portal and "本单位考评" in portal and repair in portal
    assert "廉情" not in portal  # another unit's (confidential) item
    await unit.close()


async def test_a_new_catalog_from_the_console_takes_effect_without_a_restart(
    site: tuple[WeChatServer, str, str], tmp_path: Path
) -> None:
    wechat, _, _ = site
    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console/catalog")).text()
    assert "阳光物业" in page and "健康知识讲座" in page and "已约0/10" in page
    current = await (await staff.get("/console/catalog.yaml")).text()
    # Staff may look; only admin imports (a catalog says what is confidential).
    lifted = current.replace("confidential: true", "confidential: false")
    refused = await staff.post(
        "/console/catalog",
        data={"csrf": CSRF.search(page)[1], "yaml": lifted},  # type: ignore[index]
    )
    assert refused.status == 403
    await staff.close()

    admin = await login(wechat, "admin1")
    token = await csrf_of(admin, "/console/catalog")
    broken = current.replace("unit: property", "unit: nobody", 1)
    rejected = await admin.post("/console/catalog", data={"csrf": token, "yaml": broken})
    assert rejected.status == 400 and "nobody" in await rejected.text()
    renamed = current.replace("title: 水电维修", "title: 家庭水电维修", 1)
    assert renamed != current
    done = await admin.post("/console/catalog", data={"csrf": token, "yaml": renamed})
    assert done.status == 200 and "已导入" in await done.text()
    await admin.close()
    # The bot uses the new version at once.
    assert "家庭水电维修" in await say(wechat, "o_new_catalog", "水管爆了")
    unit = await login(wechat, "property1")
    assert (await unit.get("/console/catalog")).status == 403
    await unit.close()


async def test_a_catalog_imported_in_one_process_reaches_the_others(
    site: tuple[WeChatServer, str, str], db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """Several processes serve one database: the admin's import goes to the process
    that took the request, and every other one picks it up within seconds."""
    wechat, _, _ = site
    other = await start(
        aiohttp_client, db_url, catalog_path=tmp_path / "catalog.yaml", catalog_refresh_interval=0.2
    )
    assert "家庭水电维修" not in await (await other.client.get("/services")).text()
    admin = await login(wechat, "admin1")
    token = await csrf_of(admin, "/console/catalog")
    current = await (await admin.get("/console/catalog.yaml")).text()
    renamed = current.replace("title: 水电维修", "title: 家庭水电维修", 1)
    done = await admin.post("/console/catalog", data={"csrf": token, "yaml": renamed})
    assert done.status == 200
    await admin.close()
    for _ in range(50):
        if "家庭水电维修" in await (await other.client.get("/services")).text():
            break
        await asyncio.sleep(0.1)
    assert "家庭水电维修" in await say(other, "o_other_process", "水管爆了")
    # A process (re)started later keeps the console's version: its catalog file did
    # not change, so it is not imported over it.
    restarted = await start(aiohttp_client, db_url, catalog_path=tmp_path / "catalog.yaml")
    assert "家庭水电维修" in await (await restarted.client.get("/services")).text()


async def test_no_redirect_to_another_site_after_login(site: tuple[WeChatServer, str, str]) -> None:
    wechat, _, _ = site
    for target in ("//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example"):
        reply = await wechat.client.post(
            "/login",
            data={"username": "staff1", "password": PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert reply.headers["Location"] == "/console", target


async def test_broadcasts_are_composed_previewed_and_confirmed_in_the_console(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    await wechat.event("o_res", "subscribe")  # subscribed to the default topics
    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console/broadcasts")).text()
    token = CSRF.search(page)[1]  # type: ignore[index]
    form = {"csrf": token, "topic": "anti-fraud", "title": "反诈提醒", "text": "陌生来电一律挂断。"}
    too_long = await staff.post("/console/broadcasts", data={**form, "text": "字" * 601})
    assert too_long.status == 400 and "内容有 601 个字" in await too_long.text()
    preview = await (await staff.post("/console/broadcasts", data=form)).text()
    assert "预览" in preview and "1 位订阅居民" in preview
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        assert not (await session.scalars(select(models.Broadcast))).all()  # not yet
    confirmed = await staff.post(
        "/console/broadcasts", data={**form, "confirm": "yes"}, allow_redirects=False
    )
    assert confirmed.status == 302
    await wechat.client.app[keys.SCHEDULER].run_now("broadcasts")
    listing = await (await staff.get("/console/broadcasts")).text()
    assert "反诈提醒" in listing and "1/1（100%）" in listing
    await staff.close()
    unit = await login(wechat, "property1")
    assert (await unit.get("/console/broadcasts")).status == 403
    await unit.close()


async def test_staff_place_a_proxy_order_for_a_resident_without_a_phone(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, _, _ = site
    staff = await login(wechat, "staff1")
    token = await csrf_of(staff, "/console")
    form = {
        "csrf": token,
        "item": "allowance",
        "name": "张奶奶",
        "building": "7栋",
        "note": "腿脚不便",
        "consent": "yes",
    }
    bad = await staff.post("/console/proxy", data={**form, "phone": "12345"})
    assert bad.status == 400 and "手机号码不对" in await bad.text()
    placed = await staff.post("/console/proxy", data={**form, "phone": "13800001234"})
    page = await placed.text()
    assert placed.status == 200 and "高龄津贴申请代办" in page and "13800001234" in page
    assert "工作人员 staff1" in page  # the order's history names who placed it
    await staff.close()


async def dispatch_to(wechat: WeChatServer, code: str, *units: str) -> None:
    """Staff send the order to each unit in turn, from its console page."""
    staff = await login(wechat, "staff1")
    path = f"/console/orders/{code}"
    for unit in units:
        token = await csrf_of(staff, path)
        moved = await staff.post(
            f"{path}/dispatch", data={"csrf": token, "unit": unit}, allow_redirects=False
        )
        assert moved.status == 302
    await staff.close()


async def told_and_clocks(wechat: WeChatServer, code: str) -> tuple[list[str], list[str]]:
    """The units told of the order's dispatches, and those whose acceptance clock runs."""
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        told = await session.scalars(
            select(models.OutboxMessage.target).where(
                models.OutboxMessage.key.like(f"placed:{code}:%")
            )
        )
        clocks = await session.scalars(
            select(models.Reminder.note).where(models.Reminder.key.like(f"accept_remind:{code}:%"))
        )
        return [str(t) for t in told], [str(c) for c in clocks]


async def test_redispatching_to_another_unit_tells_that_unit_and_restarts_its_clocks(
    site: tuple[WeChatServer, str, str],
) -> None:
    wechat, repair, _ = site
    await dispatch_to(wechat, repair, "law")
    told, clocks = await told_and_clocks(wechat, repair)
    assert sorted(set(told)) == ["law", "property"]  # the first unit, then the new one
    assert "law" in clocks and "property" in clocks
    lawyer = await login(wechat, "lawyer1")
    assert repair in await (await lawyer.get("/portal")).text()
    await lawyer.close()


async def test_dispatching_back_to_the_first_unit_tells_it_again_and_restarts_its_clocks(
    site: tuple[WeChatServer, str, str],
) -> None:
    """A → B → A: the second dispatch to A is a new event with its own notification and
    reminders (keyed by order code and unit alone, they used to be dropped)."""
    wechat, repair, _ = site
    await dispatch_to(wechat, repair, "law", "property")
    told, clocks = await told_and_clocks(wechat, repair)
    assert sorted(told) == ["law", "property", "property"]
    assert sorted(clocks) == ["law", "property", "property"]
