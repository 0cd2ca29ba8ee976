"""Development helpers: only when no WeChat credentials are configured.

``GET /dev/outbox?openid=…&after=N``: replies that missed the webhook's deadline and
would have gone out through WeChat's customer-service API. ``order-menu chat`` and
the simulator poll it to show them. With real credentials the replies go to WeChat
and this answers 404.
"""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.webhook import DevOutbox

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app.add_routes(routes)


@routes.get("/dev/outbox")
async def outbox(request: web.Request) -> web.Response:
    tenants = request.app[keys.TENANTS]
    tenant = tenants.get(request.query.get("community")) or tenants.default
    sent = tenant.customer_service
    if not isinstance(sent, DevOutbox) or not tenant.dev_tools_open(
        request.app[keys.SETTINGS].dev_tools
    ):
        raise web.HTTPNotFound(text="late replies go to WeChat")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="after: expected a number") from None
    openid = request.query.get("openid")
    if not openid:
        raise web.HTTPBadRequest(text="openid: required (one resident's late replies)")
    messages = [
        {"seq": m.seq, "openid": m.openid, "text": m.text} for m in sent.after(after, openid)
    ]
    return web.json_response({"messages": messages})
