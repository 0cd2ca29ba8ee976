"""``GET/POST /wechat[/<community>]``: each official account's server URL.

Checks run before the body is parsed, cheapest first: signature and replay window
on the query (403), size (413), then decryption and XML (400). A request that fails
is answered with its status and a one-word body, and logged with the reason; it
never reaches the handlers and never costs a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from bot import keys
from bot.pipeline.webhook import MessageBusy
from bot.tenants import Tenant
from bot.wechat.inbound import SUCCESS, Rejected, check_signature
from storage.errors import database_failed
from storage.repositories.states import StateConflict

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

XML = "application/xml"


def setup(app: web.Application) -> None:
    app.add_routes(routes)


def _tenant(request: web.Request) -> Tenant:
    """The community whose account this is: ``/wechat/<id>``, or the default one on
    ``/wechat``. An unknown id is refused like a bad signature (403), without telling
    which communities exist."""
    tenants = request.app[keys.TENANTS]
    community_id = request.match_info.get("community")
    tenant = tenants.default if community_id is None else tenants.get(community_id)
    if tenant is None:
        raise Rejected(403, f"no community {community_id!r} here")
    return tenant


def _verify_query(request: web.Request, tenant: Tenant) -> None:
    """Each community's account has its own token: a request signed for one is
    refused on another's path."""
    settings = request.app[keys.SETTINGS]
    token = tenant.credentials.token
    check_signature(token, request.query, now=time.time(), window=settings.wechat_replay_window)


@routes.get("/wechat")
@routes.get("/wechat/{community}")
async def verify_url(request: web.Request) -> web.Response:
    """WeChat's check of the server URL: echo ``echostr`` when the signature holds."""
    try:
        _verify_query(request, _tenant(request))
    except Rejected as exc:
        log.info("GET /wechat refused: %s", exc.reason)
        return web.Response(status=exc.status, text="forbidden")
    return web.Response(text=request.query.get("echostr", ""))


@routes.post("/wechat")
@routes.post("/wechat/{community}")
async def receive(request: web.Request) -> web.Response:
    started = asyncio.get_running_loop().time()
    app = request.app
    try:
        tenant = _tenant(request)
        _verify_query(request, tenant)
        body = await _read_body(request, app[keys.SETTINGS].wechat_max_body)
        envelope = tenant.codec.decode(body, request.query)
    except Rejected as exc:
        log.info("POST /wechat refused (%d): %s", exc.status, exc.reason)
        return web.Response(status=exc.status, text=_STATUS_WORD.get(exc.status, "rejected"))

    try:
        outcome = await tenant.webhook.handle(envelope.incoming, started=started)
    except MessageBusy:
        log.warning("%s: not answered in time: left for WeChat's retry", envelope.incoming.key)
        return web.Response(status=503, text="unavailable")
    except StateConflict:
        # Another message of this resident saved the conversation state meanwhile:
        # nothing of this one was recorded, and WeChat's retry runs it on the new state.
        log.warning("state of %s changed meanwhile: left for WeChat's retry", envelope.incoming.key)
        return web.Response(status=503, text="unavailable")
    except Exception as exc:
        if not database_failed(exc):
            raise
        # Not acknowledged, so WeChat retries: better than saying "success" for a
        # message whose effects were not saved.
        log.error("database unavailable for %s: %s", envelope.incoming.key, exc)
        return web.Response(status=503, text="unavailable")
    if outcome.reply_xml is None:
        return web.Response(text=SUCCESS)
    text = tenant.codec.encode(outcome.reply_xml, envelope, nonce=request.query.get("nonce", ""))
    return web.Response(text=text, content_type=XML)


async def _read_body(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejected(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:  # chunked, or a Content-Length that lied
            raise Rejected(413, f"body over the {limit}-byte limit")
    return b"".join(chunks)


_STATUS_WORD = {400: "bad request", 403: "forbidden", 413: "too large"}
