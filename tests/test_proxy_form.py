"""代办 on the console: a slot is chosen from the upcoming slots with places left (in
words, never a slot id), and a refusal keeps everything typed, with the reason in
Chinese next to the field at fault."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_console import CSRF, login, make_site
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

OPTION = re.compile(r'<option value="([^"]*)"( selected)?>([^<]*)</option>')


def options(page: str) -> dict[str, tuple[str, bool]]:
    """The 场次 select's options: value → (the words shown, selected)."""
    found = re.search(r'<select name="session"[^>]*>(.*?)</select>', page, re.S)
    assert found is not None, page[-2000:]
    return {v: (words, bool(chosen)) for v, chosen, words in OPTION.findall(found[1])}


def error_beside(page: str, field: str) -> str:
    found = re.search(rf'data-field="{field}">([^<]*)</span>', page)
    return found[1] if found else ""


@pytest.fixture
async def site(db_url: str, aiohttp_client: Client, tmp_path: Path) -> WeChatServer:
    wechat, _, _ = await make_site(db_url, aiohttp_client, tmp_path)
    return wechat


async def test_slots_with_places_left_are_listed_in_words(site: WeChatServer) -> None:
    staff = await login(site, "staff1")
    page = await (await staff.get("/console")).text()
    listed = options(page)
    assert "health-lecture@first" in listed and "health-lecture@second" in listed, listed
    words, _ = listed["health-lecture@first"]
    assert re.fullmatch(r"健康知识讲座 \d\d月\d\d日 周. 15:00（还剩 10 个名额）", words), words
    assert not english_words(" ".join(w for w, _ in listed.values()))
    token = CSRF.search(page)[1]  # type: ignore[index]
    form = {
        "csrf": token,
        "name": "张奶奶",
        "phone": "13800001234",
        "note": "腿脚不便",
        "consent": "yes",
    }
    # The slot alone names its item (the item select still shows another).
    taken = await staff.post(
        "/console/proxy",
        data={**form, "item": "allowance", "session": "health-lecture@first", "people": "10"},
        allow_redirects=False,
    )
    assert taken.status == 302, await taken.text()
    order = visible_text(await (await staff.get(taken.headers["Location"])).text())
    assert "健康知识讲座" in order, order
    listed = options(await (await staff.get("/console")).text())
    assert "health-lecture@first" not in listed and "health-lecture@second" in listed  # full
    await staff.close()


async def test_an_invalid_phone_keeps_what_was_typed_and_says_which_field(
    site: WeChatServer,
) -> None:
    staff = await login(site, "staff1")
    token = CSRF.search(await (await staff.get("/console")).text())[1]  # type: ignore[index]
    typed = {
        "item": "health-lecture",
        "session": "health-lecture@second",
        "name": "张奶奶",
        "phone": "138001",
        "building": "7栋2单元",
        "people": "2",
        "note": "腿脚不便，女儿陪同",
        "consent": "yes",
    }
    refused = await staff.post("/console/proxy", data={"csrf": token, **typed})
    page = await refused.text()
    assert refused.status == 400
    for name in ("name", "phone", "building", "note"):
        assert f'name="{name}" placeholder="' in page
        assert f'value="{typed[name]}"' in page, (name, page[-3000:])
    assert 'name="people" type="number" min="1" max="100" value="2"' in page
    assert options(page)["health-lecture@second"][1], "the chosen slot stays chosen"
    assert "手机号码不对" in error_beside(page, "phone")
    assert not error_beside(page, "name") and not error_beside(page, "session")
    shown = visible_text(page)
    codes = frozenset(re.findall(r"/console/orders/([2-9A-Z]{6})", page))  # quoted as they are
    assert not english_words(shown, codes), shown

    # More people than places left: the reason stands by the 场次.
    full = await staff.post(
        "/console/proxy", data={"csrf": token, **typed, "phone": "13800001234", "people": "11"}
    )
    page = await full.text()
    assert full.status == 400 and "只剩 10 个名额" in error_beside(page, "session"), page[-3000:]
    assert 'value="腿脚不便，女儿陪同"' in page
    await staff.close()
