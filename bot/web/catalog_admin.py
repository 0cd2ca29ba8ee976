"""The catalog in the console: what is offered, sessions and places, and a new version
imported from YAML without a restart (the matcher index is rebuilt in a thread and
swapped in; requests in flight keep the version they started with)."""

from __future__ import annotations

import asyncio
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import yaml
from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of, tenant_of
from catalog.loader import CatalogError, parse_catalog
from storage import models
from storage.repositories.catalog import import_catalog
from storage.repositories.users import audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
MAX_YAML = 1_000_000


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
                select(models.Item.key, models.ItemSession)
                .join(models.ItemSession, models.ItemSession.item_id == models.Item.id)
                .where(
                    models.Item.community_id == catalog.community_id,
                    models.ItemSession.retired_at.is_(None),
                )
                .order_by(models.ItemSession.starts_at)
            )
        ).all()
    sessions: dict[str, list[str]] = {}
    for item_key, booked in rows:
        places = (
            f"{booked.booked}/{booked.capacity}" if booked.capacity else f"{booked.booked}/不限"
        )
        sessions.setdefault(item_key, []).append(
            f"{booked.starts_at.astimezone(zone):%m-%d %H:%M} 已约{places}"
        )
    context = {
        "community": catalog.community_name,
        "user": user,
        "version": catalog.version,
        "units": catalog.units,
        "items": catalog.items,
        "sessions": sessions,
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
        return await _render(request, user, problems=["yaml: empty"], status=400)
    if len(text) > MAX_YAML:
        return await _render(request, user, problems=["yaml: over 1 MB"], status=413)
    live = tenant_of(request, user).catalog
    try:
        catalog = await asyncio.to_thread(parse_catalog, text, "uploaded YAML")
    except CatalogError as exc:
        return await _render(
            request, user, problems=[str(p) for p in exc.problems], text=text, status=400
        )
    if catalog.community_id != live.current.community_id:
        problem = (
            f"community.id: '{catalog.community_id}' is not this service's community "
            f"'{live.current.community_id}'"
        )
        return await _render(request, user, problems=[problem], text=text, status=400)
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
            summary.describe(),
        )
    await live.replace(catalog)  # the new matcher is built in a thread, then swapped in
    return await _render(request, user, summary=summary.describe())
