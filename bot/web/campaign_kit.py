"""A campaign's kit for the WeChat groups (楼栋群), and the groups themselves.

Broadcasts reach the residents who follow the account; many households do not, but
almost every building has a WeChat group its grid head is in. For each campaign the
kit page gives staff a poster (its QR code brings whoever scans it to the account)
and a short text sized for a group post, and a checklist by grid where staff tick
the groups it went to; the groups page is where staff keep the list of groups and
the buildings each covers.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.campaigns.fonts import FontFinder
from bot.campaigns.group_text import group_post
from bot.campaigns.poster import PosterCache, PosterContent
from bot.campaigns.qrcodes import poster_url
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of, tenant_of
from bot.wechat.errors import WeChatError
from catalog import topics as campaign_topics
from catalog.model import Catalog
from storage import models
from storage.repositories import campaigns
from storage.repositories import groups as repo
from storage.repositories.users import SignedIn, audit

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STAFF = ("staff", "admin")
FONTS = web.AppKey("poster_fonts", FontFinder)
POSTERS = web.AppKey("posters", PosterCache)

NO_FONT = "海报暂时做不出来：服务器上缺少中文字体。请联系系统管理员处理，文字部分可以先用。"
NO_QRCODE = "暂时连不上微信，海报上的二维码还没生成，请稍后刷新再试。文字部分可以先用。"
LONGEST_NAME = 50
LONGEST_BUILDING = 20
MOST_BUILDINGS = 60
GROUP_FIELDS = ("name", "grid", "buildings", "active")


class GroupProblem(ValueError):
    """What staff must change in a group's form, in their words."""


def setup(app: web.Application) -> None:
    app[FONTS] = FontFinder(app[keys.SETTINGS].poster_font)
    app[POSTERS] = PosterCache()
    app.add_routes(routes)


# --- the kit -------------------------------------------------------------------------


async def _campaign(request: web.Request, user: SignedIn) -> models.Broadcast:
    async with request.app[keys.READER]() as session:
        row = await campaigns.campaign(session, user.community_id, int(request.match_info["id"]))
    if row is None:
        raise web.HTTPNotFound(text="没有找到这条宣传。")
    return row


def _topic_name(catalog: Catalog, topic: str) -> str:
    return next((t.name for t in campaign_topics.topics(catalog) if t.id == topic), "社区宣传")


def _day(row: models.Broadcast, zone: ZoneInfo) -> dt.date:
    """The campaign's date: when it is sent, or when it was made (a recurring one)."""
    return (row.send_at or row.created_at).astimezone(zone).date()


async def _poster_content(
    request: web.Request, user: SignedIn, row: models.Broadcast
) -> PosterContent:
    catalog = catalog_of(request, user)
    url = await poster_url(
        request.app[keys.SESSIONMAKER], tenant_of(request, user).customer_service, row.id
    )
    return PosterContent(
        topic=_topic_name(catalog, row.topic),
        title=row.title,
        text=row.text,
        community=catalog.community_name,
        qr_url=url,
        date=_day(row, ZoneInfo(catalog.document.community.timezone)),
    )


async def _poster_problem(request: web.Request, user: SignedIn, row: models.Broadcast) -> str:
    """Why the poster cannot be made now, for staff; '' when it can."""
    if await request.app[FONTS].find_font() is None:
        return NO_FONT
    try:
        await _poster_content(request, user, row)
    except WeChatError as exc:
        log.warning("no QR code for campaign %s: %s", row.id, exc)
        return NO_QRCODE
    return ""


@routes.get("/console/broadcasts/{id:\\d+}/kit")
async def kit(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    row = await _campaign(request, user)
    catalog = catalog_of(request, user)
    problem = await _poster_problem(request, user, row)
    async with request.app[keys.READER]() as session:
        listed = await repo.groups(session, user.community_id)
        posted = {p.group_id: p for p in await repo.posted_groups(session, row.id)}
        scanned = await campaigns.scanned_by(session, row.id)
    zone = ZoneInfo(catalog.document.community.timezone)
    by_grid: list[dict[str, Any]] = []
    for key, name in _grid_choices(catalog):
        shown = [g for g in listed if g.grid_key == key and (g.active or g.id in posted)]
        if not shown:
            continue
        entries = []
        for g in shown:
            tick = posted.get(g.id)
            entries.append(
                {
                    "id": g.id,
                    "name": g.name,
                    "buildings": "、".join(g.buildings or []),
                    "active": g.active,
                    "posted": tick is not None,
                    "by": tick.posted_by if tick else "",
                    "at": f"{tick.posted_at.astimezone(zone):%m-%d %H:%M}" if tick else "",
                }
            )
        by_grid.append({"name": name, "groups": entries})
    context = {
        "community": catalog.community_name,
        "user": user,
        "campaign": {"id": row.id, "title": row.title, "topic": _topic_name(catalog, row.topic)},
        "problem": problem,
        "text": group_post(
            topic=_topic_name(catalog, row.topic),
            title=row.title,
            text=row.text,
            community=catalog.community_name,
        ),
        "grids": by_grid,
        "posted": len(posted),
        "scanned": scanned,
    }
    return aiohttp_jinja2.render_template("campaign_kit.html", request, context)


@routes.get("/console/broadcasts/{id:\\d+}/poster.png")
async def poster(request: web.Request) -> web.Response:
    """The poster; ``?download=1`` as a file named for the campaign."""
    user = require(request, *STAFF)
    row = await _campaign(request, user)
    font = await request.app[FONTS].find_font()
    if font is None:
        raise web.HTTPServiceUnavailable(text=NO_FONT)
    try:
        content = await _poster_content(request, user, row)
    except WeChatError as exc:
        log.warning("no QR code for campaign %s: %s", row.id, exc)
        raise web.HTTPServiceUnavailable(text=NO_QRCODE) from None
    png = await request.app[POSTERS].poster(row.id, content, font)
    headers = {"Cache-Control": "private, no-cache"}
    if request.query.get("download"):
        name = quote(f"{content.topic}海报.png")
        headers["Content-Disposition"] = (
            f"attachment; filename=\"poster.png\"; filename*=UTF-8''{name}"
        )
    return web.Response(body=png, content_type="image/png", headers=headers)


@routes.post("/console/broadcasts/{id:\\d+}/groups")
async def tick(request: web.Request) -> web.Response:
    """Tick (``posted=yes``) or un-tick (``posted=no``) one group for the campaign.
    One group per request: two staff ticking different groups never undo each other."""
    user = require(request, *STAFF)
    form = await checked_form(request, user)
    row = await _campaign(request, user)
    posted = form.get("posted", "")
    group_id = form.get("group", "")
    if posted not in ("yes", "no") or not group_id.isdigit():
        raise web.HTTPBadRequest(text="请在群名旁边点“已发到群”或“撤销”。")
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER].begin() as session:
        found = await repo.group(session, user.community_id, int(group_id))
        if found is None:
            raise web.HTTPNotFound(text="没有找到这个群。")
        if posted == "yes":
            if not found.active:
                raise web.HTTPConflict(text="这个群已经停用，不能再标记。")
            changed = await repo.tick(session, row.id, found.id, user.username, now)
        else:
            changed = await repo.untick(session, row.id, found.id)
        if changed:
            action = "group_post" if posted == "yes" else "group_post.undo"
            await audit(session, user.community_id, user.username, action, found.name, row.title)
    raise web.HTTPFound(f"/console/broadcasts/{row.id}/kit#groups")


# --- the groups ----------------------------------------------------------------------


def _grid_choices(catalog: Catalog) -> list[tuple[str | None, str]]:
    """The catalog's grids, then groups of no grid (or of a grid since removed)."""
    return [(g.id, g.name) for g in catalog.document.community.grids] + [(None, "未分网格")]


def parse_group(form: dict[str, str], catalog: Catalog) -> tuple[str, str | None, list[str]]:
    """Name, grid and buildings as staff filled them in; :class:`GroupProblem` else."""
    name = " ".join(form["name"].split())
    if not name:
        raise GroupProblem("请填写群名，如 解东小区3栋住户群")
    if len(name) > LONGEST_NAME:
        raise GroupProblem(f"群名请写在{LONGEST_NAME}字以内")
    grids = {g.id for g in catalog.document.community.grids}
    grid = form["grid"] or None
    if grid is None and grids:
        raise GroupProblem("请选择这个群所在的网格")
    if grid is not None and grid not in grids:
        raise GroupProblem("请从列表里选择网格")
    buildings = list(dict.fromkeys(b for b in re.split(r"[，,、；;\s]+", form["buildings"]) if b))
    if not buildings:
        raise GroupProblem("请填写群里住户所在的楼栋，如 3栋、4栋")
    if len(buildings) > MOST_BUILDINGS:
        raise GroupProblem(f"一个群最多填{MOST_BUILDINGS}个楼栋")
    too_long = next((b for b in buildings if len(b) > LONGEST_BUILDING), None)
    if too_long is not None:
        raise GroupProblem(f"楼栋“{too_long[:LONGEST_BUILDING]}…”太长了，请写成 3栋 这样")
    return name, grid, buildings


async def _groups_page(
    request: web.Request,
    user: SignedIn,
    *,
    form: dict[str, str] | None = None,
    editing: int | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    catalog = catalog_of(request, user)
    async with request.app[keys.READER]() as session:
        listed = await repo.groups(session, user.community_id)
    names = dict(_grid_choices(catalog))
    groups = []
    for g in listed:
        shown = form if editing == g.id and form is not None else None
        groups.append(
            {
                "id": g.id,
                "name": shown["name"] if shown else g.name,
                "grid": shown["grid"] if shown else (g.grid_key or ""),
                "grid_name": names.get(g.grid_key, "未分网格"),
                "buildings": shown["buildings"] if shown else "、".join(g.buildings or []),
                "active": bool(shown["active"]) if shown else g.active,
            }
        )
    context = {
        "community": catalog.community_name,
        "user": user,
        "grids": [(g.id, g.name) for g in catalog.document.community.grids],
        "groups": groups,
        "form": form if editing is None and form is not None else {},
        "editing": editing,
        "problem": problem,
    }
    return aiohttp_jinja2.render_template("wechat_groups.html", request, context, status=status)


@routes.get("/console/groups")
async def groups_page(request: web.Request) -> web.Response:
    return await _groups_page(request, require(request, *STAFF))


@routes.post("/console/groups")
async def add_group(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "").strip() for name in GROUP_FIELDS}
    catalog = catalog_of(request, user)
    try:
        name, grid, buildings = parse_group(form, catalog)
        async with request.app[keys.SESSIONMAKER].begin() as session:
            if await repo.group_named(session, user.community_id, name) is not None:
                raise GroupProblem(f"已经有叫“{name}”的群了")
            await repo.add_group(session, user.community_id, name, grid, buildings)
            await audit(
                session, user.community_id, user.username, "group", name, "、".join(buildings)
            )
    except GroupProblem as exc:
        return await _groups_page(request, user, form=form, problem=str(exc), status=400)
    raise web.HTTPFound("/console/groups")


@routes.post("/console/groups/{gid:\\d+}")
async def edit_group(request: web.Request) -> web.Response:
    """Change a group's name, grid or buildings, or stop (``active`` unticked) using it."""
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "").strip() for name in GROUP_FIELDS}
    catalog = catalog_of(request, user)
    group_id = int(request.match_info["gid"])
    try:
        name, grid, buildings = parse_group(form, catalog)
        async with request.app[keys.SESSIONMAKER].begin() as session:
            row = await repo.group(session, user.community_id, group_id)
            if row is None:
                raise web.HTTPNotFound(text="没有找到这个群。")
            other = await repo.group_named(session, user.community_id, name)
            if other is not None and other.id != row.id:
                raise GroupProblem(f"已经有叫“{name}”的群了")
            row.name, row.grid_key, row.buildings = name, grid, buildings
            row.active = bool(form["active"])
            state = "" if row.active else "（已停用）"
            await audit(
                session,
                user.community_id,
                user.username,
                "group.edit",
                name,
                "、".join(buildings) + state,
            )
    except GroupProblem as exc:
        return await _groups_page(
            request, user, form=form, editing=group_id, problem=str(exc), status=400
        )
    raise web.HTTPFound("/console/groups")
