"""常用回复: a unit member accepts or completes with one of the item's canned replies, by
chat (``完成 码 1``) or in the portal (a button per reply), and the resident's news
carries the words. Through /wechat and the portal over HTTP; the order moves only
through the order domain."""

from __future__ import annotations

import re
from pathlib import Path

from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import say
from tests.test_units import invite, outbox_texts, place
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start


async def test_a_member_completes_with_a_canned_reply_by_chat(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    assert "绑定成功" in await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    code = await place(wechat, "o_resident")
    told = "\n".join(await outbox_texts(wechat, "property"))
    assert f"接单 {code} 1”：师傅今天下午上门，请留意电话" in told, told

    accepted = await say(wechat, "o_worker", f"接单 {code} 1")
    assert f"完成 {code} 1：已修好，请试用" in accepted, accepted
    assert f"完成 {code} 2：已临时处理，配件到了再来换" in accepted
    news = await outbox_texts(wechat, "o_resident")
    assert any("单位留言：师傅今天下午上门，请留意电话" in t for t in news), news

    missing = await say(wechat, "o_worker", f"完成 {code} 7")
    assert "没有这一条" in missing and "已修好，请试用" in missing
    await say(wechat, "o_worker", f"开始 {code}")
    assert "已完成" in await say(wechat, "o_worker", f"完成 {code} 1")
    news = await outbox_texts(wechat, "o_resident")
    assert any("办理情况：已修好，请试用" in t for t in news), news


async def test_a_member_picks_a_canned_reply_in_the_portal(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_resident")
    await add_user(wechat, "property1", "unit", unit="property")
    member = await login(wechat, "property1")
    page = await (await member.get(f"/console/orders/{code}")).text()
    shown = visible_text(page)
    assert (
        "接单：师傅今天下午上门，请留意电话" in shown
        and english_words(shown, frozenset({code})) == []
    )  # a code may be all letters
    token = await csrf_of(member, f"/console/orders/{code}")
    steps = (
        ("accept", "师傅今天下午上门，请留意电话"),
        ("start", ""),
        ("complete", "已修好，请试用"),
    )
    for action, note in steps:
        if action == "complete":
            page = await (await member.get(f"/console/orders/{code}")).text()
            assert "办结：已修好，请试用" in visible_text(page)
        done = await member.post(
            f"/console/orders/{code}/{action}",
            data={"csrf": token, "note": note},
            allow_redirects=False,
        )
        assert done.status == 302, await done.text()
    news = await outbox_texts(wechat, "o_resident")
    assert any("办理情况：已修好，请试用" in t for t in news), news
    page = visible_text(await (await member.get(f"/console/orders/{code}")).text())
    assert re.search(r"已完成", page) and "已修好，请试用" in page
    await member.close()
