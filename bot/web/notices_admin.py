"""停水停电通知 in the console: staff publish a notice for the whole community, a grid
or a building with an end time; while it is in force the bot answers residents there
with it before taking an order (``handlers.notices``). Staff see how many residents
it answered and how many still reported the problem, and can withdraw it early."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of
from catalog.notices import building_number, subject_words
from storage import models
from storage.repositories import notices as repo
from storage.repositories.users import audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
FIELDS = ("scope", "grid", "building", "text", "until", "keywords", "item")
LONGEST_TEXT = 300
LONGEST_DAYS = 31


class NoticeProblem(ValueError):
    """What staff must change, in their words."""


def setup(app: web.Application) -> None:
    app.add_routes(routes)


def parse_until(text: str, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The end time as typed (2026-12-09 18:00, or a browser's 2026-12-09T18:00), in UTC."""
    said = text.strip().replace("T", " ")
    found = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2})", said)
    if found is None:
        raise NoticeProblem("结束时间请写成 2026-12-09 18:00 这样")
    try:
        year, month, day, hour, minute = (int(g) for g in found.groups())
        local = dt.datetime(year, month, day, hour, minute, tzinfo=zone)
    except ValueError:
        raise NoticeProblem("结束时间不是一个有效的日期") from None
    ends = local.astimezone(dt.UTC)
    if ends <= now:
        raise NoticeProblem("结束时间已经过了，请填以后的时间")
    if ends > now + dt.timedelta(days=LONGEST_DAYS):
        raise NoticeProblem(f"通知最长{LONGEST_DAYS}天，请填近一点的结束时间")
    return ends


def prepare(form: dict[str, str], catalog: Any, zone: ZoneInfo, now: dt.datetime) -> models.Notice:
    text = form["text"]
    if not text:
        raise NoticeProblem("请填写通知内容")
    if len(text) > LONGEST_TEXT:
        raise NoticeProblem(f"通知内容请写在{LONGEST_TEXT}字以内")
    grids = {g.id for g in catalog.document.community.grids}
    grid = building = None
    if form["scope"] == "grid":
        if form["grid"] not in grids:
            raise NoticeProblem("请选择一个网格")
        grid = form["grid"]
    elif form["scope"] == "building":
        if not form["building"]:
            raise NoticeProblem("请填写楼栋，如 5栋")
        if building_number(form["building"]) is None and len(form["building"]) < 2:
            raise NoticeProblem("楼栋请写清楚，如 5栋、解东小区5栋")
        building = form["building"][:200]
    elif form["scope"] != "all":
        raise NoticeProblem("请选择通知范围")
    keywords = [k for k in re.split(r"[，,、\s]+", form["keywords"]) if k][:20]
    item = form["item"] or None
    if item is not None and not catalog.has_item(item):
        raise NoticeProblem("请从列表里选择相关服务")
    row = models.Notice(
        community_id=catalog.community_id,
        text=text,
        grid_key=grid,
        building=building,
        keywords=keywords,
        item_key=item,
        starts_at=now,
        ends_at=parse_until(form["until"], zone, now),
        created_by="",
    )
    if not subject_words(repo.facts(row)) and item is None:
        raise NoticeProblem(
            "看不出这条通知说的是什么事（如 停水、停电、停气、电梯），"
            "请在“居民常说的话”里写几个词，或选择相关服务"
        )
    return row


def _where(row: models.Notice, grid_names: dict[str, str]) -> str:
    if row.building:
        return row.building
    if row.grid_key:
        return grid_names.get(row.grid_key, "已撤销的网格")
    return "全社区"


async def _page(
    request: web.Request,
    user: Any,
    *,
    form: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    catalog = catalog_of(request, user)
    zone = ZoneInfo(catalog.document.community.timezone)
    now = request.app[keys.CLOCK].now()
    grid_names = {g.id: g.name for g in catalog.document.community.grids}
    titles = {i.id: i.title for i in catalog.items}
    async with request.app[keys.READER]() as session:
        listed = await repo.recent(session, catalog.community_id)
    notices = []
    for entry in listed:
        row = entry.row
        live = row.withdrawn_at is None and row.ends_at > now
        notices.append(
            {
                "id": row.id,
                "text": row.text,
                "where": _where(row, grid_names),
                "until": f"{row.ends_at.astimezone(zone):%Y-%m-%d %H:%M}",
                "state": "生效中" if live else ("已撤回" if row.withdrawn_at else "已结束"),
                "live": live,
                "keywords": "、".join(row.keywords or []),
                "item": titles.get(row.item_key or "", ""),
                "answered": entry.answered,
                "reported": entry.reported,
                "by": row.created_by,
            }
        )
    default_until = (now.astimezone(zone) + dt.timedelta(hours=8)).replace(minute=0)
    context = {
        "community": catalog.community_name,
        "user": user,
        "grids": list(grid_names.items()),
        "items": [(i.id, f"{i.category} · {i.title}") for i in catalog.items],
        "notices": notices,
        "form": form or {"scope": "building", "until": f"{default_until:%Y-%m-%dT%H:%M}"},
        "problem": problem,
    }
    return aiohttp_jinja2.render_template("notices.html", request, context, status=status)


@routes.get("/console/notices")
async def notices(request: web.Request) -> web.Response:
    return await _page(request, require(request, *STAFF))


@routes.post("/console/notices")
async def publish(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "").strip() for name in FIELDS}
    catalog = catalog_of(request, user)
    zone = ZoneInfo(catalog.document.community.timezone)
    now = request.app[keys.CLOCK].now()
    try:
        row = prepare(form, catalog, zone, now)
    except NoticeProblem as exc:
        return await _page(request, user, form=form, problem=str(exc), status=400)
    row.created_by = user.username
    async with request.app[keys.SESSIONMAKER].begin() as session:
        if not await _just_published(session, row, now):  # a double click: once is enough
            session.add(row)
            await session.flush()
            where = _where(row, {g.id: g.name for g in catalog.document.community.grids})
            await audit(session, user.community_id, user.username, "notice", where, row.text)
    raise web.HTTPFound("/console/notices")


@routes.post("/console/notices/{id:\\d+}/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    await checked_form(request, user)
    now = request.app[keys.CLOCK].now()
    catalog = catalog_of(request, user)
    grid_names = {g.id: g.name for g in catalog.document.community.grids}
    async with request.app[keys.SESSIONMAKER].begin() as session:
        row = await session.get(models.Notice, int(request.match_info["id"]))
        if row is None or row.community_id != user.community_id:
            raise web.HTTPNotFound(text="没有这条通知。")
        if row.withdrawn_at is None:
            row.withdrawn_at = now
            where = _where(row, grid_names)
            await audit(
                session, user.community_id, user.username, "notice.withdraw", where, row.text
            )
    raise web.HTTPFound("/console/notices")


async def _just_published(session: Any, row: models.Notice, now: dt.datetime) -> bool:
    found = await session.scalar(
        select(models.Notice.id).where(
            models.Notice.community_id == row.community_id,
            models.Notice.text == row.text,
            models.Notice.withdrawn_at.is_(None),
            models.Notice.created_at > now - dt.timedelta(minutes=5),
        )
    )
    return found is not None
