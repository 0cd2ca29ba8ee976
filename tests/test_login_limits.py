"""Password guessing is slowed without letting the guesser lock the real user out.

Every test talks to the service over real HTTP; "another address" is a client socket
bound to another loopback address (127.0.0.2), and "behind the proxy" is either the
same address for everyone (no TRUSTED_PROXIES) or a trusted peer that names the
client in X-Forwarded-For.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from bot import keys
from bot.config import ConfigError, load_settings
from bot.web.auth import KnownDevices
from storage.models import LoginFailure
from storage.repositories.users import find_user
from tests.fake_clock import FakeClock
from tests.ordering_catalog import write_catalog
from tests.test_console import PASSWORD, add_user
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

Browser = Callable[..., aiohttp.ClientSession]


@pytest.fixture
async def browsers() -> AsyncIterator[Browser]:
    """Browsers of their own (own cookies), optionally from another loopback address."""
    opened: list[aiohttp.ClientSession] = []

    def browser(
        wechat: WeChatServer, *, address: str = "127.0.0.1", **headers: str
    ) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            base_url=str(wechat.client.make_url("/")),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(local_addr=(address, 0)),
            headers=headers,
        )
        opened.append(session)
        return session

    yield browser
    for session in opened:
        await session.close()


async def service(
    aiohttp_client: Client, db_url: str, tmp_path: Path, **extra: object
) -> WeChatServer:
    """The service with two staff logins (a second process on one database finds
    them already there)."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path), **extra)
    for username in ("staff1", "admin1"):
        async with wechat.client.app[keys.SESSIONMAKER]() as session:
            found = await find_user(session, "testville", username)
        if found is None:
            await add_user(wechat, username, "staff")
    return wechat


async def log_in(
    browser: aiohttp.ClientSession, password: str, *, username: str = "staff1", **headers: str
) -> aiohttp.ClientResponse:
    reply = await browser.post(
        "/login",
        data={"username": username, "password": password},
        headers=headers,
        allow_redirects=False,
    )
    await reply.read()
    return reply


async def guesses(
    browser: aiohttp.ClientSession, n: int, *, username: str = "staff1", **headers: str
) -> list[int]:
    return [
        (await log_in(browser, f"wrong guess {i}", username=username, **headers)).status
        for i in range(n)
    ]


def device_cookie(browser: aiohttp.ClientSession) -> aiohttp.Morsel[str] | None:  # type: ignore[type-arg]
    return next((c for c in browser.cookie_jar if c.key.startswith("om_device_")), None)


async def test_guesses_from_the_proxys_address_do_not_keep_a_known_browser_out(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    """Behind a proxy that does not forward addresses everyone is 127.0.0.1: the
    guesser is slowed, the real user's browser (it logged in before) is not."""
    wechat = await service(aiohttp_client, db_url, tmp_path)
    real = browsers(wechat)
    assert (await log_in(real, PASSWORD)).status == 302
    cookie = device_cookie(real)
    assert cookie is not None and cookie["path"] == "/login" and cookie["httponly"]

    attacker = browsers(wechat)
    statuses = await guesses(attacker, 8)
    assert statuses == [401] * 5 + [429] * 3, statuses
    refused = await log_in(attacker, "another guess")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1

    assert (await log_in(real, PASSWORD)).status == 302  # the real user gets in
    assert (await log_in(attacker, "yet another guess")).status == 429  # still slowed
    # A browser the user never logged in on shares the proxy's address with the
    # guesser, and waits like it (the price of no TRUSTED_PROXIES).
    assert (await log_in(browsers(wechat), PASSWORD)).status == 429


async def test_an_attacker_on_another_address_does_not_keep_the_real_user_out(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    wechat = await service(aiohttp_client, db_url, tmp_path)
    attacker = browsers(wechat, address="127.0.0.2")
    assert await guesses(attacker, 7) == [401] * 5 + [429] * 2
    assert (await log_in(browsers(wechat), PASSWORD)).status == 302


async def test_guessing_backs_off_doubling_instead_of_locking(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    clock = FakeClock(dt.datetime.now(dt.UTC))
    wechat = await service(aiohttp_client, db_url, tmp_path, clock=clock)
    guesser = browsers(wechat)
    assert await guesses(guesser, 5) == [401] * 5
    waits = []
    for _ in range(4):
        refused = await log_in(guesser, "too soon")
        assert refused.status == 429
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        clock.advance(seconds=wait - 1)
        assert (await log_in(guesser, "still too soon")).status == 429
        clock.advance(seconds=1)
        assert (await log_in(guesser, "on time, but wrong")).status == 401
    assert waits == [15, 30, 60, 120]  # doubling after each further failure
    refused = await log_in(guesser, PASSWORD)
    assert refused.status == 429 and "4分钟后再试" in await refused.text()
    clock.advance(minutes=4)
    # Not a lock: the wait over, the right password works, and forgets the failures.
    assert (await log_in(guesser, PASSWORD)).status == 302
    assert await guesses(guesser, 6) == [401] * 5 + [429]


async def test_the_account_cap_stops_many_addresses_but_not_a_known_browser(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    """Guesses spread over many addresses meet a cap per account; when it is reached
    only browsers that logged in before get in."""
    wechat = await service(aiohttp_client, db_url, tmp_path, trusted_proxies="127.0.0.1")
    real = browsers(wechat, **{"X-Forwarded-For": "198.51.100.7"})
    assert (await log_in(real, PASSWORD)).status == 302
    # 97 failures from 97 addresses earlier today (the cap is 100) ...
    now = wechat.client.app[keys.CLOCK].now()
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        session.add_all(
            LoginFailure(
                account="testville:staff1",
                remote=f"203.0.113.{i}",
                at=now - dt.timedelta(hours=1, seconds=i),
            )
            for i in range(97)
        )
    # ... and a few more through the proxy, from addresses never seen.
    proxy = browsers(wechat)
    for i in range(3):
        statuses = await guesses(proxy, 1, **{"X-Forwarded-For": f"192.0.2.{i}"})
        assert statuses == [401]
    fresh = await log_in(proxy, PASSWORD, **{"X-Forwarded-For": "192.0.2.200"})
    assert fresh.status == 429 and "以前登录过的设备" in await fresh.text()
    assert (await log_in(real, PASSWORD)).status == 302  # the known browser gets in
    # Another account is not touched.
    assert (await log_in(proxy, PASSWORD, username="admin1")).status == 302


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    behind_proxy = await service(aiohttp_client, db_url, tmp_path, trusted_proxies="127.0.0.0/30")
    proxy = browsers(behind_proxy)
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    assert await guesses(proxy, 6, **attacker) == [401] * 5 + [429]
    # A forged address written by the client itself, left of what the proxy appended,
    # is not read: still the same client.
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    assert (await log_in(proxy, "guess", **forged)).status == 429
    # Another client behind the same proxy is its own client.
    real = browsers(behind_proxy)
    assert (await log_in(real, PASSWORD, **{"X-Forwarded-For": "198.51.100.7"})).status == 302
    # Hops that are trusted proxies themselves are skipped.
    chained = {"X-Forwarded-For": "203.0.113.9, 127.0.0.2"}
    assert (await log_in(proxy, "guess", **chained)).status == 429

    # From a peer that is not a trusted proxy the header means nothing: changing it
    # on every guess does not make a new client.
    direct = await service(
        aiohttp_client, db_url, tmp_path, trusted_proxies="10.0.0.0/8, 192.168.1.1"
    )
    client = browsers(direct, address="127.0.0.3")
    statuses = [
        (
            await log_in(client, "guess", username="admin1", **{"X-Forwarded-For": f"192.0.2.{i}"})
        ).status
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2


async def test_failures_and_known_browsers_are_shared_by_two_processes(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    one = await service(aiohttp_client, db_url, tmp_path)
    two = await service(aiohttp_client, db_url, tmp_path)
    real = browsers(one)
    assert (await log_in(real, PASSWORD)).status == 302
    attacker_one, attacker_two = browsers(one), browsers(two)
    statuses = []
    for attacker in (attacker_one, attacker_two) * 3:
        statuses += await guesses(attacker, 1)
    # Five tries across both processes, not five each.
    assert statuses == [401] * 5 + [429], statuses
    assert (await log_in(attacker_one, "guess")).status == 429
    # The browser known to the first process is known to the second.
    cookie = device_cookie(real)
    assert cookie is not None
    on_two = browsers(two)
    on_two.cookie_jar.update_cookies(
        {cookie.key: cookie.value}, URL(str(two.client.make_url("/login")))
    )
    assert (await log_in(on_two, PASSWORD)).status == 302
    assert (await log_in(browsers(two), PASSWORD)).status == 429  # an unknown one waits


async def test_a_forged_or_foreign_device_cookie_is_not_a_known_browser(
    db_url: str, aiohttp_client: Client, tmp_path: Path, browsers: Browser
) -> None:
    wechat = await service(aiohttp_client, db_url, tmp_path)
    real = browsers(wechat)
    assert (await log_in(real, PASSWORD, username="admin1")).status == 302
    cookie = device_cookie(real)
    assert cookie is not None
    attacker = browsers(wechat)
    assert await guesses(attacker, 5) == [401] * 5
    url = URL(str(wechat.client.make_url("/login")))
    device, issued, mac = cookie.value.split(".")
    staff_cookie = KnownDevices.cookie_name("testville:staff1")
    for value in (
        cookie.value,  # admin1's cookie under staff1's name: signed for another account
        f"{device}.{issued}.{'0' * len(mac)}",
        f"{device}.{int(issued) + 1}.{mac}",
        "garbage",
        f"{device}.{issued}.{'签' * len(mac)}",  # not even ASCII: was a 500
    ):
        forger = browsers(wechat)
        forger.cookie_jar.update_cookies({staff_cookie: value}, url)
        assert (await log_in(forger, PASSWORD)).status == 429, value


def test_trusted_proxies_must_be_addresses_or_networks(clean_env: Path) -> None:
    assert load_settings(trusted_proxies="").trusted_proxy_networks == ()
    parsed = load_settings(trusted_proxies="127.0.0.1, 10.0.0.0/8,::1").trusted_proxy_networks
    assert [str(n) for n in parsed] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXIES='10\.0\.0\.0/8, nginx'.*'nginx'"):
        load_settings(trusted_proxies="10.0.0.0/8, nginx")
