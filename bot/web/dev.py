"""Development helpers: only when no WeChat credentials are configured.

``GET /dev/outbox?openid=…&after=N``: replies that missed the webhook's deadline and
would have gone out through WeChat's customer-service API. ``order-menu chat`` and
the simulator poll it to show them. With real credentials the replies go to WeChat
and this answers 404.
"""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.web.params import query_int
from bot.wechat.customer_service import DevOutbox

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
    after = query_int(request, "after", label="序号", default=0, low=0, high=2**62)
    openid = request.query.get("openid")
    if not openid:
        raise web.HTTPBadRequest(text="openid: required (one resident's late replies)")
    messages = [
        {"seq": m.seq, "openid": m.openid, "text": m.text} for m in sent.after(after, openid)
    ]
    return web.json_response({"messages": messages})
