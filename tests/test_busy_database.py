"""A busy database: pages that only read are answered at once, and whatever cannot get
the database in time is answered 503 with a short Chinese page, never a 500.

"Busy" is made for real: on SQLite another connection holds the write lock (a
``BEGIN IMMEDIATE`` on a plain ``sqlite3`` connection, as a CLI import or a backup
would); on both backends every pooled connection is checked out.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot import keys
from tests.ordering_catalog import write_catalog
from tests.test_console import PASSWORD, add_user, csrf_of, login
from tests.test_ordering import CODE, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

WAIT = 1.5
"""DB_POOL_TIMEOUT of these tests: how long work waits for the lock or a connection."""
READERS_WAIT = 5.0
"""DB_POOL_TIMEOUT of the test of pages that only read: a page that waited for the
lock would take this long; one that did not answers within ``PROMPT``."""
PROMPT = 2.0
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
BUSY_PAGE = "系统有点忙，请稍后再试"


@pytest.fixture
def sqlite_file(sqlite_template: Path, tmp_path: Path) -> Path:
    """A migrated SQLite database of this test's own (SQLite only: the write lock)."""
    path = tmp_path / "busy.db"
    shutil.copyfile(sqlite_template, path)
    return path


async def _site(
    aiohttp_client: Client, url: str, tmp_path: Path, wait: float = WAIT
) -> tuple[WeChatServer, str]:
    """The service with an admin, a staff member, a unit member and one order."""
    wechat = await start(
        aiohttp_client, url, catalog_path=write_catalog(tmp_path), db_pool_timeout=wait
    )
    await add_user(wechat, "admin1", "admin")
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    await say(wechat, "o_res", "水管爆了", "1栋", "13899990000")
    code = CODE.search(await say(wechat, "o_res", "确认"))
    assert code is not None
    return wechat, code[1]


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock (as a long import would)."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@asynccontextmanager
async def pool_exhausted(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every connection the pool may hand out is checked out (by a slow report, say):
    taken until the next checkout waits in vain."""
    held: list[AsyncConnection] = []
    try:
        while True:
            try:
                held.append(await engine.connect())
            except PoolTimeout:
                break
        yield
    finally:
        for connection in held:
            await connection.close()


def _get_routes(wechat: WeChatServer, code: str) -> list[str]:
    """Every GET page of the app, its path parameters filled in: a page added later is
    checked too, without anyone remembering to list it here."""
    values = {"community": "testville", "code": code}
    paths = []
    for route in wechat.client.app.router.routes():
        if route.method != "GET":
            continue
        canonical = route.resource.canonical if route.resource else ""
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m[1], "1"), canonical)
        paths.append(path)
    return sorted(set(paths))


async def _timed(browser: aiohttp.ClientSession, path: str) -> tuple[int, float, str]:
    started = time.monotonic()
    async with browser.get(path, headers=BROWSER, allow_redirects=False) as reply:
        body = await reply.text(errors="replace")
        return reply.status, time.monotonic() - started, body


async def test_pages_that_only_read_are_answered_at_once_while_a_writer_holds_the_lock(
    aiohttp_client: Client, tmp_path: Path, sqlite_file: Path
) -> None:
    url = f"sqlite+aiosqlite:///{sqlite_file}"
    wechat, code = await _site(aiohttp_client, url, tmp_path, READERS_WAIT)
    admin = await login(wechat, "admin1")
    unit = await login(wechat, "property1")
    try:
        with write_lock_held(sqlite_file):
            seen = {}
            for path in _get_routes(wechat, code):
                browser = unit if path.startswith("/portal") else admin
                seen[path] = await _timed(browser, path)
            for path in ("/public", "/services", "/login", "/console", "/portal", "/metrics"):
                assert path in seen, sorted(seen)
                assert seen[path][0] == 200, (path, seen[path][0], seen[path][2][:300])
            # Busy is not unready: the database takes writes, just not this instant.
            assert seen["/readyz"][0] == 200, seen["/readyz"]
            # Every page answered, at once: none waited for the lock (a page that does
            # waits out DB_POOL_TIMEOUT and is refused).
            slow = {p: (s, round(t, 2)) for p, (s, t, _) in seen.items() if s >= 500 or t > PROMPT}
            assert not slow, slow
    finally:
        await admin.close()
        await unit.close()


async def test_work_that_must_write_waits_for_the_lock_then_gets_a_busy_page_not_a_500(
    aiohttp_client: Client, tmp_path: Path, sqlite_file: Path
) -> None:
    wechat, code = await _site(aiohttp_client, f"sqlite+aiosqlite:///{sqlite_file}", tmp_path)
    staff = await login(wechat, "staff1")
    client = wechat.client
    form = {"username": "admin1", "password": PASSWORD}
    try:
        with write_lock_held(sqlite_file):
            csrf = await csrf_of(staff, f"/console/orders/{code}")  # reading: at once
            started = time.monotonic()
            refused = await client.post("/login", data=form, headers=BROWSER)
            waited = time.monotonic() - started
            body = await refused.text()
            assert refused.status == 503, (refused.status, body[:300])
            assert BUSY_PAGE in body and refused.headers["Retry-After"].isdigit()
            assert waited >= WAIT * 0.8  # it queued for the lock before giving up
            action = await staff.post(
                f"/console/orders/{code}/close", data={"csrf": csrf}, headers=BROWSER
            )
            assert action.status == 503 and BUSY_PAGE in await action.text()
        # The lock released: the same requests go through.
        welcome = await client.post("/login", data=form, allow_redirects=False)
        assert welcome.status == 302
        closed = await staff.post(
            f"/console/orders/{code}/close", data={"csrf": csrf}, allow_redirects=False
        )
        assert closed.status == 302
    finally:
        await staff.close()


async def test_pages_get_a_busy_answer_when_no_connection_is_free(
    aiohttp_client: Client, tmp_path: Path, db_url: str
) -> None:
    wechat = await start(
        aiohttp_client,
        db_url,
        catalog_path=write_catalog(tmp_path),
        db_pool_size=1,
        db_pool_timeout=1.0,
    )
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    client = wechat.client
    try:
        async with pool_exhausted(client.app[keys.ENGINE]):
            for reply in await asyncio.gather(
                client.get("/public", headers=BROWSER), staff.get("/console", headers=BROWSER)
            ):
                assert reply.status == 503 and BUSY_PAGE in await reply.text()
                assert reply.headers["Retry-After"].isdigit()
            # Not a browser (a scraper, a script): the same in JSON.
            scrape = await client.get("/metrics")
            assert scrape.status == 503 and scrape.content_type == "application/json"
            assert (await scrape.json())["error"] == "database unavailable"
        assert (await client.get("/public")).status == 200
        assert (await staff.get("/console")).status == 200
        assert (await client.get("/metrics")).status == 200
    finally:
        await staff.close()
