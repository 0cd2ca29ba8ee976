"""The learning inbox (学习箱): messages the bot did not understand, grouped for staff;
one decision teaches the bot a phrase in every process, survives a new catalog
import, is audited, and is written back by ``order-menu catalog export``."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from bot import keys
from bot.cli import main
from catalog.learned import (
    Learned,
    Learning,
    apply_learned,
    is_ignored,
    is_stale,
    phrase_of,
    with_learned,
)
from catalog.loader import load_catalog, parse_catalog
from catalog.matcher import Matcher
from catalog.schema import Faq
from storage import models
from storage.repositories.inbox import (
    OpenMessage,
    decide,
    group_messages,
    learning_of,
    record_for_inbox,
)
from tests.conftest import DEMO_CATALOG, REPO
from tests.test_console import CSRF, add_user, login
from tests.test_ordering import say
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

MESSAGES = re.compile(r'name="messages" value="([^"]*)"')
REGRESSION = REPO / "tests" / "regression" / "learned.jsonl"
WATER_HEATER = "热水器不出热水"
"""Matched nothing on the demo catalog before anyone taught the bot."""


async def record(
    wechat: WeChatServer, key: str, text: str, reason: str = "none", **extra: Any
) -> None:
    """What the conversation does with a message it did not understand."""
    app = wechat.client.app
    tenant = app[keys.TENANTS].default
    result = tenant.catalog.matcher.match(text)
    async with app[keys.SESSIONMAKER].begin() as session:
        await record_for_inbox(
            session,
            community_id=tenant.id,
            openid=extra.get("openid", "o_resident"),
            message_key=key,
            text=text,
            reason=reason,  # type: ignore[arg-type]
            candidates=result.candidates,
            catalog_version=tenant.catalog.current.version,
        )


async def site(aiohttp_client: Client, db_url: str, **extra: Any) -> WeChatServer:
    wechat = await start(aiohttp_client, db_url, **extra)
    for username, role, unit in (
        ("admin1", "admin", None),
        ("staff1", "staff", None),
        ("property1", "unit", "property"),
    ):
        await add_user(wechat, username, role, unit)
    return wechat


async def page_of(browser: Any, path: str = "/console/learning") -> str:
    reply = await browser.get(path)
    assert reply.status == 200, await reply.text()
    return str(await reply.text())


async def teach(
    browser: Any, phrase: str, action: str, *, item: str = "", messages: str = ""
) -> Any:
    token = CSRF.search(await page_of(browser))
    assert token is not None
    return await browser.post(
        "/console/learning",
        data={
            "csrf": token[1],
            "phrase": phrase,
            "action": action,
            "item": item,
            "messages": messages,
        },
        allow_redirects=False,
    )


# --- the console page ----------------------------------------------------------------------


async def test_staff_see_similar_messages_grouped_with_the_closest_services(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await site(aiohttp_client, db_url)
    for n, text in enumerate(
        [
            WATER_HEATER,
            "我家热水器不出热水了，怎么办？",
            "热水器不出热水",  # the same message retried: recorded once
            "热水器不出热水啊",
            "空调漏水了",
            "好的收到",
        ]
    ):
        await record(wechat, f"m{n}" if n != 2 else "m0", text)
    await record(wechat, "m7", "帮我开个无犯罪证明", reason="ambiguous")
    staff = await login(wechat, "staff1")
    page = await page_of(staff)
    shown = visible_text(page)
    # Three wordings of one need are one group of three, shown first.
    first = shown.index("热水器不出热水 3 次")
    assert first < shown.index("空调漏水") and first < shown.index("好的收到")
    assert "我家热水器不出热水了，怎么办？" in shown and "没听懂 3 次" in shown
    assert "拿不准 1 次" in shown
    assert "最接近的服务：" in shown and "证明开具代办" in shown
    # In Chinese, with titles, never ids; staff may look but not decide.
    assert english_words(shown) == [] and "home-repair" not in shown
    assert "只有管理员可以教机器人新的说法" in shown and "设为这项服务的说法" not in shown
    await staff.close()

    admin = await login(wechat, "admin1")
    page = await page_of(admin)
    shown = visible_text(page)
    assert "设为这项服务的说法" in shown and "忽略这类话" in shown
    assert "水电维修" in shown  # the item to choose, by its title
    assert english_words(shown) == []
    await admin.close()


async def test_only_admin_may_teach_the_bot(db_url: str, aiohttp_client: Client) -> None:
    wechat = await site(aiohttp_client, db_url)
    await record(wechat, "m1", WATER_HEATER)
    anonymous = await wechat.client.get("/console/learning", allow_redirects=False)
    assert anonymous.status == 302

    unit = await login(wechat, "property1")
    assert (await unit.get("/console/learning")).status == 403
    refused = await unit.post("/console/learning", data={"phrase": WATER_HEATER})
    assert refused.status == 403 and "没有权限" in await refused.text()
    await unit.close()

    staff = await login(wechat, "staff1")
    token = CSRF.search(await page_of(staff))
    assert token is not None
    for path, data in (
        ("/console/learning", {"action": "synonym", "item": "home-repair"}),
        ("/console/learning", {"action": "ignore"}),
        ("/console/learning/forget", {}),
    ):
        reply = await staff.post(path, data={"csrf": token[1], "phrase": WATER_HEATER, **data})
        assert reply.status == 403
        assert "只有管理员可以教机器人新的说法" in await reply.text()
    await staff.close()

    admin = await login(wechat, "admin1")
    no_token = await admin.post(
        "/console/learning",
        data={"phrase": WATER_HEATER, "action": "synonym", "item": "home-repair"},
    )
    assert no_token.status == 403 and "表单已过期" in await no_token.text()
    no_item = await teach(admin, WATER_HEATER, "synonym")
    assert no_item.status == 400 and "请先选一项服务" in await no_item.text()
    too_short = await teach(admin, "热", "synonym", item="home-repair")
    assert too_short.status == 400 and "说法太短了" in await too_short.text()
    await admin.close()
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        assert await session.scalar(select(func.count(models.LearnedDecision.id))) == 0
    assert "水电维修" not in await say(wechat, "o_res", WATER_HEATER)


async def test_a_decision_teaches_every_process_within_seconds_and_is_audited(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await site(aiohttp_client, db_url, catalog_refresh_interval=0.5)
    other = await start(aiohttp_client, db_url, catalog_refresh_interval=0.5)
    before = await say(other, "o_before", WATER_HEATER)
    assert "水电维修" not in before
    await record(wechat, "m1", WATER_HEATER)
    await record(wechat, "m2", "我家热水器不出热水了")

    admin = await login(wechat, "admin1")
    page = await page_of(admin)
    group = MESSAGES.search(page)
    assert group is not None
    decided = await teach(admin, WATER_HEATER, "synonym", item="home-repair", messages=group[1])
    assert decided.status == 302
    taught_at = time.monotonic()
    done = await page_of(admin, decided.headers["Location"])
    assert "记住了" in visible_text(done)
    assert "暂时没有需要处理的话" in visible_text(done)  # both messages dealt with
    assert "「水电维修」的说法" in visible_text(done)

    # This process has it at once; the other one within its catalog poll.
    assert "水电维修" in await say(wechat, "o_here", WATER_HEATER)
    live = other.client.app[keys.TENANTS].default.catalog
    while live.matcher.match(WATER_HEATER).item != "home-repair":
        assert time.monotonic() - taught_at < 5, "the other process never learned it"
        await asyncio.sleep(0.05)
    assert "水电维修" in await say(other, "o_there", WATER_HEATER)

    audit = visible_text(await page_of(admin, "/console/audit"))
    assert "学习箱" in audit and WATER_HEATER in audit and "设为「水电维修」的说法" in audit
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        entry = await session.scalar(
            select(models.AuditEntry).where(models.AuditEntry.action == "learn")
        )
        assert entry is not None and entry.actor == "admin1" and entry.target == WATER_HEATER

    # Withdrawn, it is forgotten everywhere too.
    token = CSRF.search(done)
    assert token is not None
    forgot = await admin.post(
        "/console/learning/forget",
        data={"csrf": token[1], "phrase": WATER_HEATER},
        allow_redirects=False,
    )
    assert forgot.status == 302
    await admin.close()
    assert "水电维修" not in await say(wechat, "o_after", WATER_HEATER)
    started = time.monotonic()
    while live.matcher.match(WATER_HEATER).item == "home-repair":
        assert time.monotonic() - started < 5
        await asyncio.sleep(0.05)


async def test_decisions_survive_a_new_catalog_and_are_exported(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await site(aiohttp_client, db_url, catalog_refresh_interval=0.5)
    await record(wechat, "m1", WATER_HEATER)
    await record(wechat, "m2", "办个老年优待证")
    admin = await login(wechat, "admin1")
    assert (await teach(admin, WATER_HEATER, "synonym", item="home-repair")).status == 302
    assert (await teach(admin, "老年优待证", "synonym", item="elderly-allowance")).status == 302
    assert (await teach(admin, "好的收到！", "ignore")).status == 302

    # A new catalog version without 高龄津贴 and with 水电维修 renamed is imported.
    text = DEMO_CATALOG.read_text(encoding="utf-8").replace("title: 水电维修", "title: 家庭维修")
    document = yaml.safe_load(text)
    document["items"] = [i for i in document["items"] if i["id"] != "elderly-allowance"]
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    imported = await asyncio.to_thread(
        invoke, "catalog", "import", str(edited), DATABASE_URL=db_url
    )
    assert imported.exit_code == 0, imported.output

    live = wechat.client.app[keys.TENANTS].default.catalog
    started = time.monotonic()
    while "家庭维修" not in [i.title for i in live.current.items]:
        assert time.monotonic() - started < 5, "the new catalog was never installed"
        await asyncio.sleep(0.05)
    # The decision on a kept item still applies; the one on the dropped item is stale.
    assert "家庭维修" in await say(wechat, "o_res", WATER_HEATER)
    shown = visible_text(await page_of(admin))
    assert "原来对应的服务已不在清单里，暂不生效" in shown
    assert "「家庭维修」的说法" in shown and "不用理会的话" in shown
    await admin.close()

    regression = tmp_path / "learned.jsonl"
    exported = await asyncio.to_thread(
        invoke, "catalog", "export", "--regression", str(regression), DATABASE_URL=db_url
    )
    assert exported.exit_code == 0, exported.output
    assert "老年优待证" in exported.stderr and "left out" in exported.stderr
    catalog = parse_catalog(exported.stdout, "exported")  # a valid catalog file
    assert WATER_HEATER in catalog.item("home-repair").synonyms
    assert catalog.document.ignore == ["好的收到"]
    assert [json.loads(line) for line in regression.read_text(encoding="utf-8").splitlines()] == [
        {"text": WATER_HEATER, "expect": ["home-repair"], "act": "request"},
        {"text": "好的收到", "expect": [], "act": "chat"},
    ]
    # Committed to the YAML and imported again, the phrases are kept once.
    again = tmp_path / "again.yaml"
    again.write_text(exported.stdout, encoding="utf-8")
    assert (
        await asyncio.to_thread(invoke, "catalog", "import", str(again), DATABASE_URL=db_url)
    ).exit_code == 0
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        learning = await learning_of(session, "jiedong")
    twice = with_learned(load_catalog(again), learning)
    assert twice.item("home-repair").synonyms.count(WATER_HEATER) == 1
    assert twice.document.ignore == ["好的收到"]


def invoke(*args: str, **env: str) -> Any:
    """The command line, as an operator runs it (stdout and stderr apart)."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# --- storage -----------------------------------------------------------------------------


async def test_a_message_is_kept_once_per_reason(db_url: str, aiohttp_client: Client) -> None:
    wechat = await site(aiohttp_client, db_url)
    await record(wechat, "k1", WATER_HEATER)
    await record(wechat, "k1", WATER_HEATER)  # WeChat retried the message
    await record(wechat, "k1", WATER_HEATER, reason="rejected")  # then 不是
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = (await session.scalars(select(models.InboxMessage))).all()
    assert sorted(r.reason for r in rows) == ["none", "rejected"]


async def test_a_decision_deals_with_messages_saying_exactly_the_phrase(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await site(aiohttp_client, db_url)
    await record(wechat, "a", "热水器不出热水！")
    await record(wechat, "b", "热水器坏了，不出热水")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await decide(
            session,
            community_id="jiedong",
            phrase=WATER_HEATER,
            action="synonym",
            target="home-repair",
            decided_by="admin1",
        )
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = (await session.scalars(select(models.InboxMessage))).all()
    assert {r.text: r.decision_id is not None for r in rows} == {
        "热水器不出热水！": True,
        "热水器坏了，不出热水": False,
    }
    with pytest.raises(ValueError):
        async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
            await decide(
                session,
                community_id="jiedong",
                phrase=WATER_HEATER,
                action="synonym",
                target=None,
                decided_by="admin1",
            )


def test_grouping_is_deterministic_and_bounded() -> None:
    import datetime as dt
    import itertools

    from catalog.normalize import normalize

    now = dt.datetime.now(dt.UTC)
    texts = ["门锁坏了", "家里门锁坏了", "锁坏了打不开门", "空调漏水", "空调漏水了怎么办", "你好"]
    texts += [f"第{n}号楼的电梯又停了" for n in range(1000)]
    # Thousands of different wordings: every synonym of the demo catalog, said four ways.
    wordings = [s for item in load_catalog(DEMO_CATALOG).items for s in item.synonyms]
    texts += [
        f"{before}{wording}{after}"
        for wording, (before, after) in itertools.product(
            wordings, [("", ""), ("你好，", "了"), ("我家", "怎么办"), ("请问", "吗？")]
        )
    ]
    assert len(set(texts)) > 2000
    messages = [OpenMessage(i, t, normalize(t), "none", [], now) for i, t in enumerate(texts)]
    started = time.perf_counter()
    groups = group_messages(messages)
    elapsed = time.perf_counter() - started
    assert group_messages(reversed(messages)) == groups
    by_phrase = {g.phrase: g for g in groups}
    assert groups[0].count == 1000  # the elevator messages differ only in a number
    assert by_phrase["空调漏水"].count == 2
    assert sum(g.count for g in groups if "锁" in g.phrase) == 3
    assert by_phrase["你好"].count == 1
    assert by_phrase["楼上渗水"].count == 4  # one wording said four ways is one group
    assert by_phrase["楼上渗水"].examples[0] == "请问楼上渗水吗？"  # the newest first
    assert elapsed < 2.0, elapsed


# --- folding decisions into a catalog ------------------------------------------------------


def test_a_phrase_has_one_meaning_and_stale_decisions_are_skipped() -> None:
    catalog = load_catalog(DEMO_CATALOG)
    document = catalog.document
    assert "楼梯灯不亮" in catalog.item("public-facility-repair").synonyms
    moved = apply_learned(
        document,
        [
            Learned("楼梯灯不亮", "synonym", "home-repair"),
            Learned("不存在的服务", "synonym", "no-such-item"),
            Learned("测一下", "ignore"),
            Learned("测一下", "synonym", "free-clinic"),  # decided again: the last wins
        ],
    )
    items = {i.id: i for i in moved.items}
    assert "楼梯灯不亮" not in items["public-facility-repair"].synonyms
    assert "楼梯灯不亮" in items["home-repair"].synonyms
    assert "测一下" in items["free-clinic"].synonyms and moved.ignore == []
    assert not any("不存在的服务" in i.synonyms for i in moved.items)
    assert is_stale(document, Learned("不存在的服务", "synonym", "no-such-item"))
    # Nothing to apply: the very same document, so the same catalog version.
    assert apply_learned(document, []) is document
    assert with_learned(catalog, Learning()).version == catalog.version
    already = Learned(phrase_of(catalog.item("home-repair").synonyms[0]), "synonym", "home-repair")
    assert apply_learned(document, [already]) is document


def test_faq_questions_and_ignored_phrases() -> None:
    catalog = load_catalog(DEMO_CATALOG)
    office = Faq(id="office-hours", questions=["社区几点上班"], answer="周一至周五8:30上班。")
    document = catalog.document.model_copy(update={"faq": [office]})
    taught = apply_learned(
        document,
        [
            Learned("居委会啥时候有人", "faq", "office-hours"),
            Learned("好的收到", "ignore"),
            Learned("没有这条", "faq", "no-such-entry"),
        ],
    )
    assert taught.faq[0].questions == ["社区几点上班", "居委会啥时候有人"]
    assert is_ignored(taught, "好的，收到！") and not is_ignored(taught, "好的收到了吗，师傅几点来")
    assert not is_ignored(document, "好的收到")


# --- the regression set --------------------------------------------------------------------


def regression_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in REGRESSION.read_text(encoding="utf-8").splitlines()]


def test_the_regression_set_is_replayed_on_the_demo_catalog() -> None:
    """Every phrase staff taught on the demo catalog (written by ``catalog export
    --regression``) still means what they decided, once the decisions are applied:
    its item is matched or offered first; a phrase expecting nothing matches nothing."""
    lines = regression_lines()
    assert len(lines) >= 5
    learned = []
    for line in lines:
        if line["expect"]:
            learned.append(Learned(line["text"], "synonym", line["expect"][0]))
        elif "faq" in line:
            learned.append(Learned(line["text"], "faq", line["faq"]))
        else:
            learned.append(Learned(line["text"], "ignore"))
    catalog = with_learned(load_catalog(DEMO_CATALOG), Learning(1, tuple(learned)))
    matcher = Matcher(catalog)
    wrong = []
    for line in lines:
        result = matcher.match(line["text"])
        first = result.item or (result.candidates[0].item if result.decision != "none" else None)
        if line["expect"]:
            ok = first == line["expect"][0]
        elif "faq" in line:
            found = matcher.match_faq(line["text"])
            ok = found is not None and found.faq.id == line["faq"]
        elif line.get("act") == "chat":  # ignored: the dialogue layer starts nothing
            ok = is_ignored(catalog.document, line["text"]) and result.decision != "matched"
        else:
            ok = result.decision != "matched"
        if not ok:
            wrong.append((line["text"], line["expect"], result.decision, first))
    assert wrong == []
