"""Pages anyone may open: the front page, the service list, and health."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.web import figures
from bot.web.scope import named_tenant
from storage import migrate
from storage.engine import read_only_engine, write_refused
from storage.repositories.evaluation import unit_months
from storage.repositories.grid_board import GridCounts, grid_counts

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app[keys.LINKS].extend(
        [
            keys.Link("/", "首页", "本社区点单服务简介和各个页面的入口", "Front page"),
            keys.Link("/services", "服务清单", "各共建单位提供哪些服务", "Services"),
            keys.Link("/public", "公示", "各单位的服务承诺和每月办理情况", "Disclosure"),
            keys.Link("/healthz", "运行状态", "服务是否正常运行（供运维监控）", "Health"),
            keys.Link("/readyz", "就绪检查", "数据库能否读写、版本是否最新（供运维监控）", "Ready"),
        ]
    )


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    app = request.app
    tenants = app[keys.TENANTS]
    catalog = tenants.default.catalog.current
    return {
        "community": catalog.community_name,
        "links": app[keys.LINKS],
        "units": len(catalog.units),
        "items": sum(1 for _ in catalog.public_items()),
        "categories": catalog.categories,
        # With several communities, each one's public pages and webhook path.
        "communities": [(t.id, t.name) for t in tenants] if tenants.several else [],
    }


@routes.get("/services")
@routes.get("/services/{community}")
@aiohttp_jinja2.template("services.html")
async def services(request: web.Request) -> dict[str, Any]:
    """The public service list. Confidential items and contact phones are not shown."""
    catalog = named_tenant(request).catalog.current
    by_category: dict[str, list[dict[str, str]]] = {}
    for item in catalog.public_items():
        by_category.setdefault(item.category, []).append(
            {
                "title": item.title,
                "unit": catalog.unit(item.unit).name,
                "mode": item.mode.value,
                "description": item.description,
            }
        )
    return {"community": catalog.community_name, "categories": by_category}


@routes.get("/public")
@routes.get("/public/{community}")
@aiohttp_jinja2.template("disclosure.html")
async def disclosure(request: web.Request) -> dict[str, Any]:
    """公示: the contracted units, their promises and items, their monthly figures (the
    last six months) with the number of orders behind each rate, how the rates are
    computed, and a per-grid board of open and completed orders. Nothing about
    residents: no names, phones, addresses or order texts; confidential items are in
    no figure and no count."""
    catalog = named_tenant(request).catalog.current
    zone = ZoneInfo(catalog.document.community.timezone)
    rules = figures.rules(request.app, catalog)
    local = rules.now.astimezone(zone)
    month_start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    async with request.app[keys.READER]() as session:
        months = await unit_months(session, catalog.community_id, zone, rules)
        board = await grid_counts(session, catalog.community_id, month_start)
    by_unit: dict[str, list[dict[str, object]]] = {}
    for month in months:
        by_unit.setdefault(month.unit, []).append(month.as_row())
    units = []
    for unit in catalog.units:
        units.append(
            {
                "name": unit.name,
                "kind": unit.kind,
                "commitment": unit.commitment,
                "accept_within": unit.accept_within_hours,
                "services": [i.title for i in catalog.public_items() if i.unit == unit.id],
                "months": by_unit.get(unit.id, [])[:6],
            }
        )
    grids = [(g.name, board.pop(g.id, None)) for g in catalog.document.community.grids]
    # Orders without a grid, or of a grid the catalog no longer has, in one row.
    rest = [board.pop(key) for key in list(board)]
    if rest:
        grids.append(
            (
                "未分网格",
                GridCounts(
                    open=sum(c.open for c in rest),
                    completed_since=sum(c.completed_since for c in rest),
                    completed=sum(c.completed for c in rest),
                ),
            )
        )
    return {
        "community": catalog.community_name,
        "units": units,
        "grids": grids,
        "month": f"{local.month}月",
        "min_sample": rules.min_sample,
        "complete_within": rules.complete_within_hours,
    }


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: the database answers, takes writes, and its schema is current
    (503 naming what is wrong if not). Neither check waits for a writer: a busy
    database is ready, one that refuses writes (an unwritable file, a standby) is not."""
    engine = request.app[keys.ENGINE]
    try:
        current = await migrate.current_revision(read_only_engine(engine))
        refused = await write_refused(engine)
    except Exception as exc:  # unreachable database, refused connection, timeout
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    if refused is not None:
        return web.json_response({"status": "read-only", "database": refused}, status=503)
    head = migrate.head_revision()
    ready = current == head
    body = {"status": "ready" if ready else "migrations pending", "schema": current, "head": head}
    return web.json_response(body, status=200 if ready else 503)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive and serving; readiness (database, migrations) is a separate check."""
    tenants = request.app[keys.TENANTS]
    body = {
        "status": "ok",
        "catalog": tenants.default.catalog.current.version,
        "communities": len(tenants),
        "pid": os.getpid(),
    }
    return web.json_response(body)
