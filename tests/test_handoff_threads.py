"""转人工 as a thread: staff see who wrote and everything they wrote since, through
the real /wechat webhook; a reply leaves it open, and only 结束对话 closes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import keys
from storage import models
from tests.test_console import CSRF, login, make_site
from tests.test_ordering import say
from tests.visible_text import visible_text
from tests.webhook_app import Client
from tests.wechat_server import WeChatServer

HANDOFF = re.compile(r"/console/handoffs/(\d+)/answer")


@pytest.fixture
async def site(db_url: str, aiohttp_client: Client, tmp_path: Path) -> WeChatServer:
    wechat, _, _ = await make_site(db_url, aiohttp_client, tmp_path)
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(
            update(models.Resident).where(models.Resident.openid == "o_res").values(name="王阿姨")
        )
    return wechat


async def told(wechat: WeChatServer) -> list[str]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        payloads = await session.scalars(
            select(models.OutboxMessage.payload)
            .where(models.OutboxMessage.target == "o_res")
            .order_by(models.OutboxMessage.id)
        )
        return [p["text"] for p in payloads]


async def test_a_handoff_is_a_thread_until_staff_close_it(site: WeChatServer) -> None:
    wechat = site
    assert "转给社区工作人员" in await say(wechat, "o_res", "转人工 楼道灯坏了好几天")
    # Written while it is open: into the thread, not to the bot (no order is started).
    reply = await say(wechat, "o_res", "水管爆了")
    assert "转给社区工作人员" in reply and "请核对" not in reply, reply
    await say(wechat, "o_res", "转人工")  # asking again joins the same thread

    staff = await login(wechat, "staff1")
    page = await (await staff.get("/console/handoffs")).text()
    shown = visible_text(page)
    assert len(set(HANDOFF.findall(page))) == 1, shown  # one resident, one thread
    assert "王阿姨" in shown, shown
    for said in ("楼道灯坏了好几天", "水管爆了", "转人工"):
        assert said in shown, (said, shown)
    assert shown.index("楼道灯坏了好几天") < shown.index("水管爆了")
    handoff_id = HANDOFF.search(page)[1]  # type: ignore[index]
    token = CSRF.search(page)[1]  # type: ignore[index]

    answered = await staff.post(
        f"/console/handoffs/{handoff_id}/answer",
        data={"csrf": token, "text": "您好，水管是哪一栋？"},
        allow_redirects=False,
    )
    assert answered.status == 302
    # Still open after the reply: the resident's answer lands in the thread.
    assert "转给社区工作人员" in await say(wechat, "o_res", "3栋2单元")
    shown = visible_text(await (await staff.get("/console/handoffs")).text())
    assert "工作人员： 您好，水管是哪一栋？" in shown or "工作人员：您好，水管是哪一栋？" in shown
    assert shown.index("您好，水管是哪一栋？") < shown.index("3栋2单元"), shown
    assert "社区工作人员回复：您好，水管是哪一栋？" in await told(wechat)

    closed = await staff.post(
        f"/console/handoffs/{handoff_id}/close", data={"csrf": token}, allow_redirects=False
    )
    assert closed.status == 302
    assert "没有等待回复的居民" in visible_text(await (await staff.get("/console/handoffs")).text())
    assert any("人工服务已经结束" in t for t in await told(wechat))
    again = await staff.post(
        f"/console/handoffs/{handoff_id}/answer",
        data={"csrf": token, "text": "还在吗？"},
        allow_redirects=False,
    )
    assert again.status == 409 and "已经结束" in await again.text()
    # Closed: the bot answers again.
    reply = await say(wechat, "o_res", "水管爆了")
    assert "转给社区工作人员" not in reply and "水电维修" in reply, reply
    await staff.close()


async def test_a_retried_message_is_kept_once(site: WeChatServer) -> None:
    wechat = site
    await say(wechat, "o_res", "转人工")
    first = await wechat.text("o_res", "家里停电了", msg_id=777001)
    second = await wechat.text("o_res", "家里停电了", msg_id=777001)
    assert first.text == second.text
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = (await session.scalars(select(models.HandoffMessage.text))).all()
    assert list(rows) == ["家里停电了"]


async def test_a_handoff_the_bot_made_records_what_follows_and_the_bot_still_answers(
    site: WeChatServer,
) -> None:
    """A question the bot cannot answer mid-form is handed on; the resident then answers
    the form's question: the bot goes on with the form (the resident did not ask for a
    person), and staff see both messages in the thread."""
    wechat = site
    assert "哪栋楼" in await say(wechat, "o_res", "水管爆了")
    handed = await say(wechat, "o_res", "现在是寒假，暑假才有吗？")
    assert "工作人员" in handed and "哪栋楼" in handed, handed
    reply = await say(wechat, "o_res", "5栋")
    assert "请核对" in reply, reply  # the form goes on (the phone is remembered)
    staff = await login(wechat, "staff1")
    shown = visible_text(await (await staff.get("/console/handoffs")).text())
    assert "暑假才有吗" in shown and "5栋" in shown and "小助手转来" in shown, shown
    await staff.close()
