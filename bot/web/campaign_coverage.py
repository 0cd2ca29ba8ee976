"""A campaign's coverage in the console: per grid, the households reached by the
account, by a 楼栋群 post and by a door-to-door visit (each once, however many
channels reached it), and who is left, elderly living alone first; and the same as
a spreadsheet to hand to the street office (see ``bot.campaigns.coverage``)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.campaigns.coverage import ACCOUNT, GROUP, VISIT, Coverage, coverage, export_rows
from bot.web import access
from bot.web.auth import require
from bot.web.exports import table_file
from bot.web.scope import catalog_of
from catalog import topics as campaign
from storage import models
from storage.repositories.users import SignedIn

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
LEFT_SHOWN = 30
"""Households left listed per grid on the page; the export has them all."""


def setup(app: web.Application) -> None:
    app.add_routes(routes)


async def _coverage(request: web.Request, user: SignedIn) -> tuple[models.Broadcast, Coverage]:
    catalog = catalog_of(request, user)
    async with request.app[keys.READER]() as session:
        broadcast = await session.get(models.Broadcast, int(request.match_info["id"]))
        if broadcast is None or broadcast.community_id != user.community_id:
            raise web.HTTPNotFound(text="没有这次宣传推送。")
        return broadcast, await coverage(session, catalog, broadcast)


@routes.get("/console/broadcasts/{id:\\d+}/coverage")
async def coverage_page(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    broadcast, found = await _coverage(request, user)
    catalog = catalog_of(request, user)
    topic = campaign.find(catalog, broadcast.topic)
    context = {
        "user": user,
        "community": catalog.community_name,
        "broadcast": broadcast,
        "topic": topic.name if topic else "",
        "found": found,
        "channels": (ACCOUNT, GROUP, VISIT),
        "left_shown": LEFT_SHOWN,
    }
    return aiohttp_jinja2.render_template("campaign_coverage.html", request, context)


@routes.get("/console/broadcasts/{id:\\d+}/coverage.{kind}")
async def coverage_export(request: web.Request) -> web.Response:
    """Every household of the campaign's grids, one row each, as Excel or CSV."""
    user = require(request, *STAFF)
    kind = request.match_info["kind"]
    if kind not in ("csv", "xlsx"):
        raise web.HTTPNotFound(text="只能导出表格（CSV 或 Excel）。")
    broadcast, found = await _coverage(request, user)
    header, rows = export_rows(found)
    access.record(
        request, user, access.EXPORT_COVERAGE, broadcast.title, f"{len(rows)} 户（含地址、备注）"
    )
    return await table_file(kind, "覆盖情况", f"coverage-{broadcast.id}", header, rows)
