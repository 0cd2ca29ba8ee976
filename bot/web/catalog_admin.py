"""The catalog in the console: what is offered, slots and places, and a new version
imported from YAML without a restart (the matcher index is rebuilt in a thread and
swapped in; requests in flight keep the version they started with).

The page speaks of units, items and grids by their names, never by the catalog's
ids or its content hash. A file that cannot be imported is listed line by line:
the YAML's own keys (``items[2].unit``) are what the admin edits, so each problem
names its line and key, with the checker's explanation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import yaml
from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of, tenant_of
from catalog.loader import CatalogError, Problem, parse_catalog
from catalog.model import Catalog
from storage import models
from storage.repositories.catalog import ImportSummary, import_catalog
from storage.repositories.users import audit

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STAFF = ("staff", "admin")
MAX_YAML = 1_000_000
CHANNELS_ZH = {
    "wechat": "公众号消息",
    "wecom_robot": "企业微信群",
    "webhook": "对接单位系统",
    "log": "只记在系统日志",
}
"""How a unit hears of new orders, as staff say it (a unit without channels: log)."""


def setup(app: web.Application) -> None:
    app.add_routes(routes)


@routes.get("/console/catalog")
async def catalog_page(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    return await _render(request, user)


async def _render(
    request: web.Request,
    user: Any,
    *,
    problems: list[str] | None = None,
    summary: str | None = None,
    text: str = "",
    status: int = 200,
) -> web.Response:
    catalog = catalog_of(request, user)
    zone = ZoneInfo(catalog.document.community.timezone)
    async with request.app[keys.READER]() as session:
        rows = (
            await session.execute(
                select(models.Item.key, models.ItemSlot)
                .join(models.ItemSlot, models.ItemSlot.item_id == models.Item.id)
                .where(
                    models.Item.community_id == catalog.community_id,
                    models.ItemSlot.retired_at.is_(None),
                )
                .order_by(models.ItemSlot.starts_at)
            )
        ).all()
        imported_at = await session.scalar(
            select(models.CatalogVersion.imported_at)
            .where(models.CatalogVersion.community_id == catalog.community_id)
            .order_by(models.CatalogVersion.id.desc())
            .limit(1)
        )
    slots: dict[str, list[str]] = {}
    for item_key, booked in rows:
        places = (
            f"{booked.booked}/{booked.capacity}" if booked.capacity else f"{booked.booked}/不限"
        )
        slots.setdefault(item_key, []).append(
            f"{booked.starts_at.astimezone(zone):%m-%d %H:%M} 已约{places}"
        )
    context = {
        "community": catalog.community_name,
        "user": user,
        "imported": f"{imported_at.astimezone(zone):%Y-%m-%d %H:%M}" if imported_at else "",
        "units": [
            {
                "name": u.name,
                "kind": u.kind,
                "channels": "、".join(CHANNELS_ZH.get(c.type, "其他") for c in u.channels)
                or CHANNELS_ZH["log"],
                "accept_within_hours": u.accept_within_hours,
            }
            for u in catalog.units
        ],
        "items": catalog.items,
        "unit_names": {u.id: u.name for u in catalog.units},
        "slots": slots,
        "problems": problems,
        "summary": summary,
        "text": text,
    }
    return aiohttp_jinja2.render_template("catalog.html", request, context, status=status)


@routes.get("/console/catalog.yaml")
async def download(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    catalog = catalog_of(request, user)
    data = catalog.document.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return web.Response(
        text=text,
        content_type="application/x-yaml",
        headers={"Content-Disposition": f'attachment; filename="catalog-{catalog.version}.yaml"'},
    )


@routes.post("/console/catalog")
async def upload(request: web.Request) -> web.Response:
    # Admin only: a catalog decides which items are confidential and where units'
    # notifications go, so importing one could expose confidential orders to staff.
    user = require(request, "admin")
    form = await checked_form(request, user)
    text = form.get("yaml", "")
    if not text.strip():
        return await _render(request, user, problems=["请先粘贴服务清单的内容。"], status=400)
    if len(text) > MAX_YAML:
        return await _render(
            request, user, problems=["内容太多了（超过100万字），请检查粘贴的内容。"], status=413
        )
    live = tenant_of(request, user).catalog
    try:
        catalog = await asyncio.to_thread(parse_catalog, text, "uploaded YAML")
    except CatalogError as exc:
        return await _render(
            request, user, problems=[_problem_zh(p) for p in exc.problems], text=text, status=400
        )
    if catalog.community_id != live.current.community_id:
        log.info(
            "catalog import refused: community.id '%s' is not this service's community '%s'",
            catalog.community_id,
            live.current.community_id,
        )
        problem = (
            f"这份服务清单是另一个社区的，不能导入到{live.current.community_name}。"
            "请检查文件开头的社区编号。"
        )
        return await _render(request, user, problems=[problem], text=text, status=400)
    before = live.current
    async with request.app[keys.SESSIONMAKER].begin() as session:
        summary = await import_catalog(
            # No file hash: serve re-imports its catalog file only when that file
            # changed, so this version survives restarts (storage last_source_sha256).
            session,
            catalog,
            source=f"console:{user.username}",
            source_sha256=None,
        )
        await audit(
            session,
            user.community_id,
            user.username,
            "catalog_import",
            catalog.version,
            summary_zh(summary, before, catalog),
        )
    await live.replace(catalog)  # the new matcher is built in a thread, then swapped in
    return await _render(request, user, summary=summary_zh(summary, before, catalog))


def _problem_zh(problem: Problem) -> str:
    where = f"第 {problem.line} 行" if problem.line else "文件"
    return (
        f"{where}（{problem.path}）：{problem.message}"
        if problem.path
        else f"{where}：{problem.message}"
    )


CHANGES_ZH = {"added": "新增", "updated": "修改", "retired": "停用", "restored": "恢复"}


def summary_zh(summary: ImportSummary, before: Catalog, after: Catalog) -> str:
    """What an import changed, for staff: counts, and the names of units, items and
    grids (from the new catalog, or the old one for what it retired)."""
    if not summary.changed:
        return "内容和现在的一样，没有变化。"
    names: dict[str, str] = {}
    for catalog in (before, after):
        names.update({u.id: u.name for u in catalog.units})
        names.update({i.id: i.title for i in catalog.items})
        names.update({g.id: g.name for g in catalog.document.community.grids})
    lines = []
    for kind, counts, named in (
        ("共建单位", summary.units, True),
        ("服务项目", summary.items, True),
        ("网格", summary.grids, True),
        ("场次", summary.slots, False),
    ):
        parts = []
        for what, ids in counts.as_dict().items():
            if not ids:
                continue
            shown = "、".join(names.get(i, "") for i in ids) if named else ""
            parts.append(f"{CHANGES_ZH[what]} {len(ids)} 个" + (f"（{shown}）" if shown else ""))
        if parts:
            lines.append(f"{kind}：" + "，".join(parts))
    return "\n".join(lines) or "已更新为新版本。"
