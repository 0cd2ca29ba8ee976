"""When the database is away or busy, a page says so: 503 and a short word, never a 500.

Work that cannot get the database in time (SQLite's write lock still held when the
busy timeout ends, no free pooled connection within ``DB_POOL_TIMEOUT``, a lost
connection, a file that cannot be written) fails with an error that
``storage.errors.database_unavailable`` recognises. Such a failure says nothing
about the request, and trying again shortly will likely succeed, so the answer is
503 with ``Retry-After`` rather than a 500 that reads as a bug: a short Chinese page
for browsers, JSON for everything else. ``/wechat`` answers its own 503 before this
sees anything (``bot.web.wechat``); any other error passes through untouched.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from storage.errors import database_unavailable

log = logging.getLogger(__name__)

RETRY_AFTER = 5
"""Seconds a client is asked to wait: a writer normally holds SQLite's lock for
milliseconds and a pooled connection for well under a second, so by then the
database that was busy most likely is not."""
BUSY = "系统有点忙，请稍后再试。"


@web.middleware
async def database_busy(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        # The driver's words, without the statement and its parameters.
        reason = next(iter(str(getattr(exc, "orig", None) or exc).splitlines()), "")
        log.warning(
            "%s %s answered 503: database unavailable (%s: %s)",
            request.method,
            request.path,
            type(exc).__name__,
            reason,
        )
        return busy_response(request)
    return response


def busy_response(request: web.Request) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER)}
    if _wants_html(request):
        tenants = request.app.get(keys.TENANTS)
        context = {"community": tenants.default.name if tenants else "", "message": BUSY}
        response = aiohttp_jinja2.render_template("busy.html", request, context, status=503)
        response.headers.update(headers)
        return response
    body = {"error": "database unavailable", "message": BUSY, "retry_after": RETRY_AFTER}
    return web.json_response(body, status=503, headers=headers)


def _wants_html(request: web.Request) -> bool:
    """Browsers (and forms they post) accept text/html; scripts and fetch() calls do not
    ask for it."""
    return "text/html" in request.headers.get("Accept", "")
