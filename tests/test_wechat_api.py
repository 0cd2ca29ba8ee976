"""The async WeChat API client, over real HTTP against the fake WeChat server.

Token storage runs on SQLite and PostgreSQL (the ``sessionmaker``/``db_url`` fixtures).
Backoff is a millisecond here so that retries cost nothing but still happen in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from bot.wechat import default_menu
from bot.wechat.api import NewsArticle, SendPolicy, WeChatAPI
from bot.wechat.errors import (
    InvalidCredential,
    NotFollowing,
    OutcomeUnknown,
    QuotaExceeded,
    RateLimited,
    WeChatError,
    WeChatUnavailable,
    WindowClosed,
)
from storage import migrate
from storage.engine import create_engine, create_sessionmaker
from storage.models import AccessToken
from storage.types import utcnow
from tests.fake_wechat import (
    CUSTOM_SEND_PATH,
    MENU_CREATE_PATH,
    TEMPLATE_SEND_PATH,
    TOKEN_PATH,
    USER_INFO_PATH,
    FakeWeChat,
    fake_wechat_fixture,
)

COMMUNITY = "jiedong"
ALICE = "oAlice0000000000000000000000"

fake_wechat = fake_wechat_fixture()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fake(fake_wechat: FakeWeChat) -> FakeWeChat:
    fake_wechat.add_user(ALICE)
    return fake_wechat


def client(
    fake: FakeWeChat,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    **options: Any,
) -> WeChatAPI:
    """A client of the fake, with test-sized timeouts and backoff unless told otherwise."""
    settings: dict[str, Any] = {
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "base_url": fake.base_url,
        "sessionmaker": sessionmaker,
        "community_id": COMMUNITY,
        "http": http,
        "timeout": 2.0,
        "backoff_base": 0.001,
        **options,
    }
    return WeChatAPI(**settings)


def tokens_used(fake: FakeWeChat, path: str = CUSTOM_SEND_PATH) -> list[str]:
    return [r.query["access_token"] for r in fake.calls(path)]


# --- the access token: single flight, cached in the database -------------------------


async def test_concurrent_sends_on_a_cold_client_fetch_one_token(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    api = client(fake, sessionmaker, http)
    await asyncio.gather(*(api.send_text(ALICE, f"消息 {i}") for i in range(100)))
    assert fake.token_fetches == 1
    assert len(fake.sent) == 100
    assert set(tokens_used(fake)) == set(fake.issued_tokens)


async def test_two_processes_on_one_database_agree_on_one_token(
    fake: FakeWeChat,
    db_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
) -> None:
    """No database lock is held while fetching (bot.wechat.token_store), so two cold
    processes may both ask; WeChat's normal mode hands both the same token."""
    fake.set_delay(TOKEN_PATH, 0.1)  # the second process arrives while the first fetches
    other_engine = create_engine(db_url)
    try:
        first = client(fake, sessionmaker, http)
        second = client(fake, create_sessionmaker(other_engine), http)
        await asyncio.gather(
            *(api.send_text(ALICE, "你好") for api in (first, second) for _ in range(20))
        )
    finally:
        await other_engine.dispose()
    assert 1 <= fake.token_fetches <= 2 and fake.forced_fetches == 0  # one per process at most
    assert len(set(tokens_used(fake))) == 1 and len(fake.sent) == 40


async def test_the_token_in_the_database_survives_a_new_client(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    await client(fake, sessionmaker, http).send_text(ALICE, "一")
    await client(fake, sessionmaker, http).send_text(ALICE, "二")
    assert fake.token_fetches == 1
    first, second = tokens_used(fake)
    assert first == second
    async with sessionmaker() as session:
        row = await session.get(AccessToken, COMMUNITY)
    assert row is not None and row.token == first
    remaining = (row.expires_at - utcnow()).total_seconds()
    assert 7100 < remaining <= 7200


async def test_a_token_is_refreshed_ahead_of_expiry(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    await client(fake, sessionmaker, http).send_text(ALICE, "一")
    # Two hours later, bar two minutes: for WeChat and for our database alike.
    fake.age_tokens(120)
    now = utcnow()
    async with sessionmaker.begin() as session:
        await session.execute(
            update(AccessToken).values(
                expires_at=now + dt.timedelta(seconds=120),
                updated_at=now - dt.timedelta(seconds=7080),
            )
        )
    await client(fake, sessionmaker, http).send_text(ALICE, "二")
    assert fake.token_fetches == 2 and fake.forced_fetches == 0
    old, new = tokens_used(fake)
    assert old != new
    async with sessionmaker() as session:
        row = await session.scalar(select(AccessToken))
    assert row is not None and row.token == new
    assert (row.expires_at - utcnow()).total_seconds() > 7100


async def test_short_lived_tokens_do_not_turn_every_call_into_a_fetch(
    sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    # Refreshing 5 minutes ahead of a 4-minute token would fetch on every call.
    async with FakeWeChat(expires_in=240) as fake:
        fake.add_user(ALICE)
        api = client(fake, sessionmaker, http)
        for _ in range(5):
            await api.send_text(ALICE, "你好")
        assert fake.token_fetches == 1


# --- invalid tokens: refresh once, retry once ----------------------------------------


@pytest.mark.parametrize("knock_out", ["invalidate_tokens", "expire_tokens"])
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried(
    fake: FakeWeChat,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    knock_out: str,
) -> None:
    api = client(fake, sessionmaker, http)
    await api.send_text(ALICE, "一")
    getattr(fake, knock_out)()  # 40001 resp. 42001 for the token the client holds
    await asyncio.gather(*(api.send_text(ALICE, "二") for _ in range(20)))
    assert fake.token_fetches == 2 and fake.forced_fetches == 1
    assert len(fake.sent) == 21


async def test_a_token_rejected_twice_raises_invalid_credential_without_looping(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    api = client(fake, sessionmaker, http)
    fake.fail_next(CUSTOM_SEND_PATH, [40001, 40001, 40001])
    with pytest.raises(InvalidCredential) as caught:
        await api.send_text(ALICE, "你好")
    assert caught.value.errcode == 40001
    assert fake.token_fetches == 2 and fake.forced_fetches == 1
    assert len(fake.calls(CUSTOM_SEND_PATH)) == 2


async def test_wrong_app_secret_raises_invalid_credential(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    api = client(fake, sessionmaker, http, app_secret="not-the-secret")
    with pytest.raises(InvalidCredential) as caught:
        await api.send_text(ALICE, "你好")
    assert caught.value.errcode == 40125
    assert fake.token_fetches == 1 and not fake.calls(CUSTOM_SEND_PATH)


# --- retries: bounded, with backoff, only for transient trouble ----------------------


@pytest.mark.parametrize("errcodes", [[-1], [45009], [-1, 45009, -1]])
async def test_busy_and_rate_limited_calls_are_retried_with_backoff(
    fake: FakeWeChat,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    errcodes: list[int],
) -> None:
    api = client(fake, sessionmaker, http, backoff_base=0.02)
    fake.fail_next(CUSTOM_SEND_PATH, errcodes)
    await api.send_text(ALICE, "你好")
    calls = fake.calls(CUSTOM_SEND_PATH)
    assert len(calls) == len(errcodes) + 1 and len(fake.sent) == 1
    pauses = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    # Attempt n waits between half and all of 0.02 * 2**(n-1) seconds.
    for n, pause in enumerate(pauses, start=1):
        assert pause >= 0.02 * 2 ** (n - 1) / 2


async def test_persistent_rate_limit_raises_after_max_attempts(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    api = client(fake, sessionmaker, http, max_attempts=3)
    fake.fail_next(CUSTOM_SEND_PATH, [45009] * 10)
    with pytest.raises(RateLimited):
        await api.send_text(ALICE, "你好")
    assert len(fake.calls(CUSTOM_SEND_PATH)) == 3


async def test_the_fakes_rate_limit_is_ridden_out(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # Retries, not storage, are under test: SQLite alone keeps the suite quick.
    url = f"sqlite+aiosqlite:///{tmp_path / 'rate.db'}"
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        # 5 calls per 0.2 s is WeChat's "N per second" at a fifth of the time.
        async with FakeWeChat(rate_limit=5, rate_window=0.2) as fake:
            fake.add_user(ALICE)
            api = client(fake, create_sessionmaker(engine), http, max_attempts=6, backoff_base=0.08)
            await asyncio.gather(*(api.send_text(ALICE, "你好") for _ in range(15)))
            assert len(fake.sent) == 15
            assert len(fake.calls(CUSTOM_SEND_PATH)) > 15  # some were answered 45009 first
    finally:
        await engine.dispose()


async def test_a_read_that_times_out_is_retried_a_bounded_number_of_times(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    api = client(fake, sessionmaker, http, timeout=0.05, max_attempts=3)
    await api.access_token()
    fake.set_delay(USER_INFO_PATH, 1.0)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        await api.user_info(ALICE)
    assert time.monotonic() - started < 0.5
    assert len(fake.calls(USER_INFO_PATH)) == 3


async def test_a_send_that_times_out_is_not_sent_again(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    """WeChat delivered it and answered late: one attempt, then OutcomeUnknown for the
    caller to record, unless the caller says a second copy is harmless."""
    api = client(fake, sessionmaker, http, timeout=0.05, max_attempts=3)
    await api.access_token()
    fake.set_slow(CUSTOM_SEND_PATH, 1.0)
    fake.set_slow(TEMPLATE_SEND_PATH, 1.0)
    with pytest.raises(OutcomeUnknown):
        await api.send_text(ALICE, "你好")
    with pytest.raises(OutcomeUnknown):
        await api.send_template(ALICE, "tmpl-1", {"a": "b"})
    assert fake.deliveries() == {ALICE: 2}  # each once
    with pytest.raises(OutcomeUnknown):
        await api.send_text(ALICE, "可以重复", policy=SendPolicy.REPEATABLE)
    assert fake.deliveries() == {ALICE: 5}  # the caller allowed it: all three attempts


async def test_an_unreachable_server_raises_unavailable(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    base_url = fake.base_url
    await fake.stop()  # nothing listens on that port any more
    api = client(fake, sessionmaker, http, base_url=base_url, max_attempts=2)
    with pytest.raises(WeChatUnavailable):
        await api.send_text(ALICE, "你好")


@pytest.mark.parametrize(
    ("setup", "error", "errcode"),
    [
        (lambda fake: fake.add_user(ALICE, window_open=False), WindowClosed, 45015),
        (lambda fake: fake.add_user(ALICE, following=False), NotFollowing, 43004),
        (lambda fake: fake.fail_next(CUSTOM_SEND_PATH, [45047]), QuotaExceeded, 45047),
        (lambda fake: fake.fail_next(CUSTOM_SEND_PATH, [40003]), WeChatError, 40003),
    ],
)
async def test_refusals_raise_typed_errors_without_retrying(
    fake: FakeWeChat,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    setup: Any,
    error: type[WeChatError],
    errcode: int,
) -> None:
    setup(fake)
    with pytest.raises(error) as caught:
        await client(fake, sessionmaker, http).send_text(ALICE, "你好")
    assert type(caught.value) is error and caught.value.errcode == errcode
    assert len(fake.calls(CUSTOM_SEND_PATH)) == 1


# --- the calls -----------------------------------------------------------------------


async def test_news_template_menu_and_user_info(
    fake: FakeWeChat, sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    fake.add_user("oBob", following=False)
    api = client(fake, sessionmaker, http)
    article = NewsArticle("义诊", "周六上午，社区卫生服务站", "https://example.org/1")
    await api.send_news(ALICE, [article])
    msgid = await api.send_template(
        ALICE, "tmpl-1", {"thing1": "义诊", "time2": "周六 9:00"}, url="https://example.org/o/1"
    )
    await api.create_menu(default_menu())
    alice, bob = await api.user_info(ALICE), await api.user_info("oBob")

    news, template = fake.sent
    assert news["news"]["articles"] == [
        {
            "title": "义诊",
            "description": "周六上午，社区卫生服务站",
            "url": "https://example.org/1",
            "picurl": "",
        }
    ]
    assert template["data"] == {"thing1": {"value": "义诊"}, "time2": {"value": "周六 9:00"}}
    assert template["url"] == "https://example.org/o/1" and isinstance(msgid, int)
    assert fake.menu == default_menu()
    # WeChat wants UTF-8 text, not \u escapes.
    assert "服务点单".encode() in fake.calls(MENU_CREATE_PATH)[0].raw
    assert alice["subscribe"] == 1 and alice["openid"] == ALICE
    assert bob == {"subscribe": 0, "openid": "oBob"}
    assert fake.token_fetches == 1


async def test_neither_secret_nor_token_is_logged(
    fake: FakeWeChat,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = client(fake, sessionmaker, http, timeout=0.05, max_attempts=3)
    await api.send_text(ALICE, "一")
    fake.invalidate_tokens()
    fake.fail_next(CUSTOM_SEND_PATH, [-1, 45009])
    fake.fail_next(TEMPLATE_SEND_PATH, [40001, 40001])
    await api.send_text(ALICE, "二")
    fake.set_delay(CUSTOM_SEND_PATH, 0.5)
    with pytest.raises(OutcomeUnknown) as timed_out:
        await api.send_text(ALICE, "三")
    with pytest.raises(InvalidCredential) as rejected:
        await api.send_template(ALICE, "tmpl-1", {"a": "b"})
    # aiosqlite's own DEBUG log shows SQL parameters (the stored token among them):
    # that is the driver's, and LOG_LEVEL=DEBUG is not for production.
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith("aiosqlite")]
    assert any("retrying" in line for line in logged) and any("refresh" in line for line in logged)
    shown = "\n".join([*logged, repr(api), str(timed_out.value), str(rejected.value)])
    for secret in [fake.app_secret, *fake.issued_tokens, *tokens_used(fake)]:
        assert secret not in shown


# --- order-menu menu push ------------------------------------------------------------


def push(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, ["menu", "push", *args], env=env, catch_exceptions=False)


async def test_menu_push_creates_the_menu_and_reuses_the_stored_token(
    fake: FakeWeChat, db_url: str, clean_env: Path
) -> None:
    env = {
        "DATABASE_URL": db_url,
        "WECHAT_API_BASE": fake.base_url,
        "WECHAT_APP_ID": fake.app_id,
        "WECHAT_APP_SECRET": fake.app_secret,
    }
    # The command runs its own event loop: give it a thread, the fake serves from this one.
    result = await asyncio.to_thread(push, **env)
    assert result.exit_code == 0, result.output
    assert fake.menu == default_menu()
    assert "menu pushed: 服务点单, 我的订单, 帮助" in result.output

    menu_file = clean_env / "menu.json"
    custom = {
        "button": [
            {"type": "click", "name": "点单", "key": "MENU_SERVICES"},
            {
                "name": "更多",
                "sub_button": [{"type": "view", "name": "社区公示", "url": "https://example.org/"}],
            },
        ]
    }
    menu_file.write_text(json.dumps(custom, ensure_ascii=False), encoding="utf-8")
    result = await asyncio.to_thread(push, "--file", str(menu_file), **env)
    assert result.exit_code == 0, result.output
    assert fake.menu == custom
    assert fake.token_fetches == 1  # the second run found the first run's token


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"WECHAT_APP_ID": "wx0fake0app0id00"}, "WECHAT_APP_SECRET"),
        ({}, "WECHAT_APP_ID and WECHAT_APP_SECRET"),
    ],
)
def test_menu_push_without_credentials_is_one_line_and_exit_2(
    clean_env: Path, env: dict[str, str], missing: str
) -> None:
    result = push(**env)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {missing} must be set to call the WeChat API"]


def test_menu_push_lists_every_problem_of_a_bad_menu_file(clean_env: Path) -> None:
    menu_file = clean_env / "menu.yaml"
    menu_file.write_text(
        "button:\n"
        "  - {name: 点单, type: click}\n"
        "  - name: 更多\n"
        "    sub_button:\n"
        "      - {name: 公示, type: view}\n"
        "      - {type: click, key: X}\n",
        encoding="utf-8",
    )
    result = push("--file", str(menu_file), WECHAT_APP_ID="wx", WECHAT_APP_SECRET="s")
    assert result.exit_code == 1
    assert f"{menu_file}: button[0].key: required for type click" in result.output
    assert f"{menu_file}: button[1].sub_button[0].url: required for type view" in result.output
    assert f"{menu_file}: button[1].sub_button[1].name: required" in result.output
    assert "3 problem(s) in the menu" in result.output
