"""A resident scans a campaign poster's QR code: followed or not, they get its topic."""

from __future__ import annotations

from sqlalchemy import func, select

from bot import keys
from storage import models
from storage.repositories import subscriptions
from storage.repositories.residents import find_resident
from tests.test_campaign_kit import campaign, service
from tests.test_console import login
from tests.test_ordering import say
from tests.webhook_app import Client


async def test_scanning_the_poster_subscribes_to_its_topic_once(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await service(aiohttp_client, db_url)
    number = await campaign(wechat, topic="drowning")
    # Someone new follows by the poster's code; WeChat retries the event.
    event = wechat.event_xml("o_new", "subscribe", f"qrscene_campaign-{number}")
    first = await wechat.post(event)
    assert "欢迎关注" in first.text and "陌生来电说退款，一律挂断" in first.text
    assert "已为您订阅「防溺水」提醒" in first.text
    await wechat.post(event)
    # A follower who had stopped 防溺水 scans it: the topic is theirs again.
    assert "退订「防溺水」" in await say(wechat, "o_old", "退订 防溺水")
    follower = await wechat.event("o_old", "SCAN", f"campaign-{number}")
    assert "已为您订阅「防溺水」提醒" in follower.text
    assert (await wechat.event("o_old", "SCAN", "some-other-code")).text in ("", "success")
    app = wechat.client.app
    async with app[keys.SESSIONMAKER]() as session:
        resident = await find_resident(session, app[keys.TENANTS].default.id, "o_old")
        assert resident is not None
        assert "drowning" in await subscriptions.topics_of(session, resident.id)
        scans = await session.scalar(select(func.count()).select_from(models.CampaignScan))
    assert scans == 2  # the retried event counted once
    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get(f"/console/broadcasts/{number}/kit")).text()
    finally:
        await staff.close()
    assert "已有 2 位居民扫海报上的二维码" in page
