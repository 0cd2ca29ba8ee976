"""Refreshing the WeChat access token while the service writes.

The refresh used to hold the database's write lock (SQLite) for as long as WeChat
took to hand out a token; now it asks WeChat outside any transaction and only stores
the answer under the lock, so a slow token endpoint holds up no other write.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.wechat.api import WeChatAPI
from storage import models
from storage.engine import create_engine, create_sessionmaker
from tests.fake_wechat import TOKEN_PATH, FakeWeChat, fake_wechat_fixture
from tests.test_outbox import api_of
from tests.webhook_app import Client, start

fake_wechat = fake_wechat_fixture()

TOKEN_ANSWER_AFTER = 2.5
"""Seconds the fake's token endpoint takes (WeChat's timeout here is 5 s)."""
PROMPT = 1.5
"""A write while the token is fetched takes well under this (it took the whole
fetch, 2.5 s here, while the refresh held the lock)."""


async def test_a_slow_token_refresh_does_not_hold_up_residents_or_other_writes(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    """On SQLite a transaction held open during the fetch was the whole database's
    write lock. (On PostgreSQL only the token's row was locked, so there this checks
    that nothing else waits either.)"""
    wechat = await start(aiohttp_client, db_url)
    app = wechat.client.app
    sessionmaker = app[keys.SESSIONMAKER]
    fake_wechat.set_delay(TOKEN_PATH, TOKEN_ANSWER_AFTER)
    async with aiohttp.ClientSession() as http:
        api = api_of(fake_wechat, sessionmaker, http, app[keys.TENANTS].accounts.default.id)
        refresh = asyncio.create_task(api.access_token())
        for _ in range(100):  # until WeChat has the request
            await asyncio.sleep(0.02)
            if fake_wechat.calls(TOKEN_PATH):
                break
        assert fake_wechat.calls(TOKEN_PATH), "the refresh did not start"

        took: list[float] = []
        replies: list[str] = []
        for n in range(2):  # a resident's first message: writes their row
            began = time.monotonic()
            replies.append((await wechat.event(f"o_while_refreshing_{n}", "subscribe")).text)
            took.append(time.monotonic() - began)
        began = time.monotonic()
        async with sessionmaker.begin() as session:  # any write through the app's sessions
            session.add(models.Community(id="another", name="另一个社区"))
        took.append(time.monotonic() - began)
        fetching_throughout = not refresh.done()
        token = await refresh

    assert max(took) < PROMPT, f"writes waited for the token refresh: {took}"
    assert fetching_throughout, f"the writes took {took}: the probe is too slow to tell"
    assert all("欢迎" in reply for reply in replies)  # answered in time, not deferred
    assert token == fake_wechat.issued_tokens[0] and fake_wechat.token_fetches == 1
    async with sessionmaker() as session:
        residents = await session.scalar(
            select(func.count()).where(models.Resident.openid.like("o_while_refreshing_%"))
        )
    assert residents == 2


async def test_two_processes_that_find_the_token_rejected_at_once_agree_on_a_working_one(
    db_url: str, sessionmaker: async_sessionmaker[AsyncSession], fake_wechat: FakeWeChat
) -> None:
    """Both force a refresh while the other is fetching: WeChat does not refresh again
    within 30 s of a forced refresh, so both get, and store, the same new token."""
    alice = "oAlice0000000000000000000000"
    fake_wechat.add_user(alice)
    other_engine = create_engine(db_url)
    try:
        async with aiohttp.ClientSession() as http:

            def process(sessions: async_sessionmaker[AsyncSession]) -> WeChatAPI:
                return api_of(fake_wechat, sessions, http, "jiedong", backoff_base=0.001)

            first, second = process(sessionmaker), process(create_sessionmaker(other_engine))
            await first.send_text(alice, "一")
            await second.send_text(alice, "二")
            fake_wechat.invalidate_tokens()  # as when the AppSecret's owner forced a refresh
            fake_wechat.set_delay(TOKEN_PATH, 0.2)  # each fetches while the other does
            await asyncio.gather(
                *(api.send_text(alice, "三") for api in (first, second) for _ in range(5))
            )
            fake_wechat.set_delay(TOKEN_PATH, 0)
            await process(sessionmaker).send_text(alice, "四")  # a third, from the database
    finally:
        await other_engine.dispose()
    assert len(fake_wechat.sent) == 13
    assert fake_wechat.forced_fetches in (1, 2) and len(fake_wechat.issued_tokens) == 1
    async with sessionmaker() as session:
        row = await session.get(models.AccessToken, "jiedong")
    assert row is not None and row.token == fake_wechat.issued_tokens[0]
