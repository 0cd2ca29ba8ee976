"""Numbers in URLs and forms: huge, negative, not numbers or empty, never a 500.

The person who typed it is told in Chinese, calling the field by its Chinese name
(页码, 日期); the log names the parameter and the value for the operator.

Every route that reads a number from its path, query string or form is listed here
and sent the same hostile values, on both databases (PostgreSQL refuses an integer
parameter above 2^31-1, SQLite one above 2^63-1: different 500s before).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.visible_text import english_words, visible_text
from tests.webhook_app import Client, start

HUGE = [
    str(2**31),  # int4 on PostgreSQL
    str(2**63),  # int8, and SQLite's INTEGER
    str(2**64),
    "9" * 40,
    "9" * 5000,  # int() itself refuses over 4300 digits
]
MALFORMED = ["-1", "-9223372036854775809", "abc", "1e3", "0x10", "1.0", "１２", "٣", "+3", "3_000"]


Send = Callable[[aiohttp.ClientSession, str, str], Awaitable[aiohttp.ClientResponse]]


@dataclass(frozen=True)
class Route:
    name: str
    send: Send
    """(browser, csrf token, value) → the reply."""
    who: str
    refused: int
    label: str
    """How the answer calls the field (Chinese: never the parameter's name)."""
    field: str
    """The parameter as the log names it ("" when the route does not log it)."""
    empty: int
    """The answer to an empty value (a form's empty box counts as absent)."""
    fine: tuple[str, ...]
    """Values that are in range: never refused as malformed."""
    high: int
    """The largest value taken."""

    def too_big(self) -> list[str]:
        return [str(self.high + 1)] + [v for v in HUGE if len(v) > 19 or int(v) > self.high]


def get(path: str) -> Send:
    async def send(browser: aiohttp.ClientSession, _: str, value: str) -> aiohttp.ClientResponse:
        return await browser.get(path.format(quote(value)), allow_redirects=False)

    return send


async def answer(browser: aiohttp.ClientSession, csrf: str, value: str) -> aiohttp.ClientResponse:
    return await browser.post(
        f"/console/handoffs/{quote(value)}/answer",
        data={"csrf": csrf, "text": "您好"},
        allow_redirects=False,
    )


async def proxy(browser: aiohttp.ClientSession, csrf: str, value: str) -> aiohttp.ClientResponse:
    form = {
        "csrf": csrf,
        "item": "allowance",
        "name": "张奶奶",
        "phone": "13800001234",
        "consent": "yes",
    }
    return await browser.post(
        "/console/proxy", data={**form, "people": value}, allow_redirects=False
    )


ROUTES = [
    Route("handoff answer (path id)", answer, "staff1", 404, "没有找到", "", 404, (), 2**31 - 1),
    Route(
        "board page", get("/console?page={}"), "staff1", 400, "页码", "page", 200, ("1", "7"), 10**5
    ),
    Route(
        "portal page", get("/portal?page={}"), "property1", 400, "页码", "page", 200, ("2",), 10**5
    ),
    Route(
        "late replies after",
        get("/dev/outbox?openid=o_x&after={}"),
        "staff1",
        400,
        "序号",
        "after",
        200,
        ("0", "12", str(2**31)),
        2**62,
    ),
    Route("proxy order people (form)", proxy, "staff1", 400, "人数", "", 302, ("1", "3"), 100),
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
async def test_a_hostile_number_is_a_404_or_a_400_naming_the_field(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    route: Route,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    browser = await login(wechat, route.who)
    csrf = await csrf_of(browser, "/portal" if route.who == "property1" else "/console")
    try:
        for value in route.too_big() + MALFORMED + (["0"] if route.field == "page" else []):
            reply = await route.send(browser, csrf, value)
            text = await reply.text()
            assert reply.status == route.refused, (value[:30], reply.status, text[:300])
            assert route.label in text, (value[:30], text[:300])
            shown = visible_text(text, reply.content_type)
            assert not english_words(shown), (value[:30], shown[:300])
            if route.field:  # the operator's log names the parameter and the value
                assert f"{route.field}={value[:40]!r}" in caplog.text, value[:30]
        reply = await route.send(browser, csrf, "")
        assert reply.status == route.empty, (reply.status, (await reply.text())[:300])
        for value in route.fine:  # in range: the page (a page past the last: the last)
            reply = await route.send(browser, csrf, value)
            assert reply.status in (200, 302), (value, reply.status)
        if route.refused == 404:
            # The largest id there can be, which no handoff has: not found either.
            assert (await route.send(browser, csrf, str(2**31 - 1))).status == 404
    finally:
        await browser.close()


BAD_DATES = ["2026-13-01", "2026-02-30", "0001-01-01", "9999-12-31", "abc", "-1", "20260101"]


async def test_a_hostile_date_on_the_board_is_a_400_naming_the_field(
    db_url: str, aiohttp_client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    browser = await login(wechat, "staff1")
    try:
        for value in BAD_DATES:
            reply = await browser.get(f"/console?date={quote(value)}")
            text = await reply.text()
            assert reply.status == 400 and "日期" in text, (value, reply.status, text[:300])
            assert not english_words(text), (value, text[:300])
            assert f"date={value!r}" in caplog.text, value
        assert (await browser.get("/console?date=")).status == 200  # the form's empty box
        assert (await browser.get("/console?date=2026-02-28")).status == 200
    finally:
        await browser.close()
