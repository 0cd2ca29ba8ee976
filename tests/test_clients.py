"""Whose address a request comes from, behind trusted proxies or not: every form an
address takes in ``X-Forwarded-For`` (IPv4, IPv6, with ports, IPv4-mapped)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.config import load_settings
from bot.web.clients import client_address

Client = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


async def seen_as(aiohttp_client: Client, trusted: str, forwarded: str | None) -> str:
    """The client address the service sees for a request from 127.0.0.1."""
    app = web.Application()
    app[keys.SETTINGS] = load_settings(trusted_proxies=trusted)

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=client_address(request))

    app.router.add_get("/", whoami)
    client = await aiohttp_client(app)
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return await (await client.get("/", headers=headers)).text()


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:5555", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        # Written by the client itself, left of what the proxy appended: never read.
        ("6.6.6.6, 203.0.113.9", "203.0.113.9"),
        # Only trusted hops: the leftmost of them is as far as anyone can tell.
        ("10.0.0.5", "10.0.0.5"),
        ("unknown", "127.0.0.1"),
        (None, "127.0.0.1"),
    ],
)
async def test_a_trusted_proxy_names_the_client(
    aiohttp_client: Client, forwarded: str | None, client: str
) -> None:
    assert await seen_as(aiohttp_client, "127.0.0.1,10.0.0.0/8", forwarded) == client


async def test_an_untrusted_peer_cannot_choose_its_address(aiohttp_client: Client) -> None:
    assert await seen_as(aiohttp_client, "10.0.0.0/8", "203.0.113.9") == "127.0.0.1"
