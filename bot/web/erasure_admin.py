"""删除居民信息 from the console: staff erase a resident's information at their request
(a resident without a smartphone asks in person or by phone), from one of the
resident's orders. The same erasure as 删除我的信息 in chat (``bot.privacy.erasure``),
audited; the page says plainly which open orders keep the contact details for now.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.privacy import erasure
from bot.web import access
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of
from storage import models
from storage.repositories.ordering import select_order
from storage.repositories.users import audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
NOT_CONFIRMED = "请先勾选“已与居民本人核实”，再删除。"


def setup(app: web.Application) -> None:
    app.add_routes(routes)


@routes.post("/console/privacy/erase/{code}")
async def erase(request: web.Request) -> web.Response:
    """Erase the information of the resident who placed the order ``code`` (or for
    whom it was placed). Staff never reach a confidential order (its unit and admin
    only), as on the order page."""
    user = require(request, *STAFF)
    form = await checked_form(request, user)
    code = request.match_info["code"]
    if form.get("confirm") != "yes":
        raise web.HTTPBadRequest(text=NOT_CONFIRMED)
    query = select_order(user.community_id, code).join(
        models.Item, models.Order.item_id == models.Item.id
    )
    if user.role == "staff":
        query = query.where(models.Item.confidential.is_(False))
    async with request.app[keys.SESSIONMAKER].begin() as session:
        order = await session.scalar(query)
        if order is None:
            raise web.HTTPNotFound(text="没有这个订单，或者您无权查看。")
        resident = await session.scalar(
            select(models.Resident).where(models.Resident.id == order.resident_id)
        )
        assert resident is not None
        done = await erasure.erase_resident(
            session,
            resident,
            requested_by=f"{user.role}:{user.username}",
            now=request.app[keys.CLOCK].now(),
        )
        kept = "、".join(o.code for o in done.kept)
        await audit(
            session,
            user.community_id,
            user.username,
            access.ERASE_RESIDENT,
            order.code,
            f"未办完的订单暂时保留联系方式：{kept}" if kept else None,
        )
    if done.kept:
        hint = (
            "还没办完的订单 "
            + "、".join(f"{o.code}（{o.title}，{o.status}）" for o in done.kept)
            + " 先留着电话和地址，办完后会自动删除。"
        )
    else:
        hint = "办完的订单只留下服务项目、时间和评分，用于考评统计。"
    context = {
        "community": catalog_of(request, user).community_name,
        "message": "已删除这位居民的个人信息",
        "hint": hint,
        "back": (f"/console/orders/{order.code}", "回到订单"),
    }
    return aiohttp_jinja2.render_template("message.html", request, context)
