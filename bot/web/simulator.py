"""A chat page that talks to the bot through its real webhook (development only).

The page posts what you type to ``/simulator/send``; the server turns it into the XML
WeChat would send, signs it with the account's token (and encrypts it in safe mode),
and POSTs it to its own ``/wechat`` over HTTP: the same path, checks and handlers as
a real message. Replies sent later (customer-service messages: late replies,
reminders, broadcasts, staff answers) come from ``/dev/outbox``.

Only when no WeChat credentials are configured (the demo): with a real account,
the page and its endpoint answer 404.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.chat import Usage, Webhook, message_xml, parse_input, reply_text
from bot.tenants import Tenant
from bot.web.scope import named_tenant

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    settings = app[keys.SETTINGS]
    no_api = not (settings.wechat_app_id and settings.wechat_app_secret)
    wanted = settings.dev_tools == "on" or (
        settings.dev_tools == "auto" and settings.wechat_token is None
    )
    if no_api and wanted:
        app[keys.LINKS].insert(
            1,
            keys.Link("/simulator", "聊天模拟器", "不用微信，以居民身份和机器人对话", "Simulator"),
        )


def _tenant(request: web.Request) -> Tenant:
    """The community talked to (``/simulator/<id>``, default without); only the demo's
    (see ``Tenant.dev_tools_open``)."""
    tenant = named_tenant(request)
    if not tenant.dev_tools_open(request.app[keys.SETTINGS].dev_tools):
        raise web.HTTPNotFound(text="the simulator is for the demo set-up (no WeChat account)")
    return tenant


@routes.get("/simulator")
@routes.get("/simulator/{community}")
@aiohttp_jinja2.template("simulator.html")
async def page(request: web.Request) -> dict[str, Any]:
    tenant = _tenant(request)
    return {"community": tenant.name, "community_id": tenant.id}


@routes.post("/simulator/send")
@routes.post("/simulator/{community}/send")
async def send(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected JSON: {openid, line}") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected JSON: {openid, line}")
    openid = str(data.get("openid") or "o_sim_resident")[:64]
    line = str(data.get("line") or "").strip()[:600]
    if not line:
        return web.json_response({"reply": None})
    try:
        message = parse_input(line)
    except Usage as usage:
        return web.json_response({"reply": str(usage), "local": True})
    if message is None:
        return web.json_response({"reply": None})
    # The address this connection came in on, not the Host header (a client could
    # point that anywhere).
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise web.HTTPServiceUnavailable(text="cannot tell this server's own address")
    origin = f"http://{sockname[0]}:{sockname[1]}"
    async with aiohttp.ClientSession() as http:
        webhook = Webhook(
            http,
            origin,
            tenant.credentials.token,
            aes_key=tenant.spec.wechat_encoding_aes_key,
            app_id=tenant.spec.wechat_app_id,
            path=f"/wechat/{tenant.id}",
        )
        status, body = await webhook.send(message_xml(openid, message))
    if status != 200:
        return web.json_response({"reply": f"(HTTP {status}) {body[:100]}", "local": True})
    return web.json_response({"reply": reply_text(body)})
