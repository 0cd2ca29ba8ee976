"""The chat simulator talks to the bot through the real webhook (demo set-up only)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot import keys
from storage import models
from tests.ordering_catalog import write_catalog
from tests.webhook_app import Client, start


async def test_the_simulator_goes_through_the_webhook(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    client = wechat.client
    page = await client.get("/simulator")
    assert page.status == 200 and "/simulator/testville/send" in await page.text()
    front = await (await client.get("/")).text()
    assert 'href="/simulator"' in front

    async def say(line: str, openid: str = "o_sim") -> str | None:
        reply = await client.post(
            "/simulator/testville/send", json={"openid": openid, "line": line}
        )
        assert reply.status == 200
        return (await reply.json())["reply"]

    assert "欢迎关注测试社区" in (await say("/follow") or "")
    assert "水电维修" in (await say("楼上老往我家滴水") or "")
    assert "/voice" in (await say("/help") or "")
    async with client.app[keys.SESSIONMAKER]() as session:
        taken = await session.scalar(select(func.count()).select_from(models.ProcessedMessage))
    assert taken == 2  # the follow event and the text: both came in through /wechat


async def test_no_simulator_with_a_real_account(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(
        aiohttp_client,
        db_url,
        catalog_path=write_catalog(tmp_path),
        wechat_app_id="wx0fake0app0id00",
        wechat_app_secret="a-secret",
    )
    assert (await wechat.client.get("/simulator")).status == 404
    sent = await wechat.client.post("/simulator/send", json={"line": "帮助"})
    assert sent.status == 404
    assert 'href="/simulator"' not in await (await wechat.client.get("/")).text()


async def test_no_simulator_for_an_account_with_its_own_token(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """A real account answering by passive replies only (a token, no AppSecret): the
    simulator would let anyone act as any of its residents, so it is off unless the
    token is the generated development one."""
    configured = await start(
        aiohttp_client,
        db_url,
        catalog_path=write_catalog(tmp_path),
        wechat_token="a-real-token",
        dev_tools="auto",
    )
    client = configured.client
    assert (await client.get("/simulator")).status == 404
    acted = await client.post("/simulator/send", json={"openid": "o_victim", "line": "我的订单"})
    assert acted.status == 404
    assert (await client.get("/dev/outbox", params={"openid": "o_victim"})).status == 404

    demo = await start(
        aiohttp_client,
        db_url,
        catalog_path=write_catalog(tmp_path),
        wechat_token=None,
        dev_tools="auto",
    )
    assert (await demo.client.get("/simulator")).status == 200
    assert (await demo.client.get("/dev/outbox", params={"openid": "o_x"})).status == 200
