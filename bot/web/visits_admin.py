"""下户走访 in the console: follow-ups visits made (open ones first; staff mark them
done), each grid's households, grid workers and latest visits, an invite code for a
new grid worker, and the household list's upload (CSV from Excel or WPS, UTF-8 or
GBK), checked whole and answered row by row in Chinese before anything is stored."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import BodyPartReader, web

from bot import keys
from bot.web.auth import check_csrf, checked_form, require
from bot.web.scope import catalog_of
from catalog.household_lists import read_list
from catalog.topics import topics
from handlers.visit_texts import OUTCOME_ZH
from storage import models
from storage.repositories import households as homes
from storage.repositories import visits as repo
from storage.repositories.units import create_grid_invite
from storage.repositories.users import SignedIn, audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
INVITE_HOURS = 72
MAX_FILE = 2 * 1024 * 1024
"""A list of 20,000 households (the most a list may hold) is 0.6 to 1.5 MB, over
aiohttp's 1 MiB ``client_max_size``: the upload is streamed (``_read_upload``), which
that limit does not bound, and stops here."""
MAX_FIELD = 4096
"""The form's other fields (the CSRF token, a checkbox) are short."""
CHUNK = 64 * 1024
SHOWN_PROBLEMS = 50


def setup(app: web.Application) -> None:
    app.add_routes(routes)


async def _page(
    request: web.Request,
    user: SignedIn,
    *,
    problems: list[str] | None = None,
    summary: str | None = None,
    invite: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    catalog = catalog_of(request, user)
    zone = ZoneInfo(catalog.document.community.timezone)
    grids = {g.id: g.name for g in catalog.document.community.grids}
    topic_names = {t.id: t.name for t in topics(catalog)}
    async with request.app[keys.READER]() as session:
        counts = await homes.grid_counts(session, user.community_id)
        task_rows = await repo.tasks(session, user.community_id, limit=100)
        visit_rows = await repo.recent_visits(session, user.community_id, limit=200)
        workers = await repo.bound_workers(session, user.community_id)

    def when(moment: Any) -> str:
        return f"{moment.astimezone(zone):%m-%d %H:%M}"

    per_grid: list[dict[str, Any]] = []
    for key, name in grids.items():
        count = counts.get(key, homes.GridCount(0, 0))
        per_grid.append(
            {
                "key": key,
                "name": name,
                "households": count.households,
                "elderly": count.elderly_alone,
                "workers": [
                    {
                        "id": w.id,
                        "name": w.name or "网格员（没有留姓名）",
                        "bound": f"{w.bound_at.astimezone(zone):%Y-%m-%d}",
                        "last_visit": when(w.last_visit) if w.last_visit else "",
                    }
                    for w in workers
                    if w.grid_key == key
                ],
                "visits": [
                    {
                        "when": when(v.created_at),
                        "household": v.household.label,
                        "outcome": OUTCOME_ZH.get(v.outcome, v.outcome),
                        "note": v.note,
                        "campaign": topic_names.get(v.broadcast_topic or "", "")
                        if v.broadcast_topic
                        else "",
                    }
                    for v in visit_rows
                    if v.grid_key == key
                ][:20],
            }
        )
    context = {
        "community": catalog.community_name,
        "user": user,
        "grids": per_grid,
        "tasks": [
            {
                "id": t.id,
                "grid": grids.get(t.grid_key, "其他网格"),
                "household": t.household,
                "note": t.note or "（没有写明）",
                "open": t.status == "open",
                "created": when(t.created_at),
                "done": when(t.done_at) if t.done_at else "",
                "by": _done_by(t.done_by),
            }
            for t in task_rows
        ],
        "problems": problems,
        "summary": summary,
        "invite": invite,
    }
    return aiohttp_jinja2.render_template("visits.html", request, context, status=status)


def _done_by(actor: str | None) -> str:
    if not actor:
        return ""
    kind, _, who = actor.partition(":")
    return "网格员" if kind == "grid" else who


@routes.get("/console/visits")
async def visits(request: web.Request) -> web.Response:
    return await _page(request, require(request, *STAFF))


@dataclass
class _Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None
    too_big: bool = False


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes; None as soon as there are more than ``limit``."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def _read_upload(request: web.Request) -> _Upload:
    """The upload form, streamed part by part: reading stops at the first part over
    its limit (the rest of the request is never held in memory)."""
    upload = _Upload()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # a nested multipart: no browser sends one for this form
        if part.name == "file" and part.filename is not None:
            upload.file = await _read_part(part, MAX_FILE)
            upload.too_big = upload.file is None
        elif part.name:
            value = await _read_part(part, MAX_FIELD)
            upload.too_big = value is None
            upload.fields[part.name] = (value or b"").decode("utf-8", "replace")
        if upload.too_big:
            break
    return upload


@routes.post("/console/visits/households")
async def upload(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    if not request.content_type.startswith("multipart/"):
        await checked_form(request, user)  # a form without a file: small, and checked
        return await _page(request, user, problems=["请先选择住户名单文件。"], status=400)
    try:
        posted = await _read_upload(request)
    except ValueError as error:  # a broken multipart body (no boundary, bad headers)
        raise web.HTTPBadRequest(text="上传没有成功，请重新选择文件再试。") from error
    # The form puts its token first; a file too big before the token is refused too.
    check_csrf(user, posted.fields.get("csrf", ""))
    if posted.too_big:
        return await _page(request, user, problems=["文件太大了，请按网格分开上传。"], status=413)
    data = posted.file
    if data is None:
        return await _page(request, user, problems=["请先选择住户名单文件。"], status=400)
    catalog = catalog_of(request, user)
    read = await asyncio.to_thread(read_list, data, catalog.document.community.grids)
    if read.problems:
        shown = [p.chinese() for p in read.problems[:SHOWN_PROBLEMS]]
        if len(read.problems) > SHOWN_PROBLEMS:
            shown.append(f"还有{len(read.problems) - SHOWN_PROBLEMS}处问题没有列出。")
        return await _page(request, user, problems=shown, status=400)
    retire = posted.fields.get("retire") == "yes"
    async with request.app[keys.SESSIONMAKER].begin() as session:
        counts = await homes.import_rows(
            session,
            user.community_id,
            read.rows,
            now=request.app[keys.CLOCK].now(),
            retire_missing=retire,
        )
        summary = (
            f"导入了{len(read.rows)}户：新增{counts.added}户，更新{counts.updated}户，"
            f"没有变化{counts.unchanged}户"
            + (f"，不再走访{counts.retired}户" if retire else "")
            + "。"
        )
        await audit(
            session, user.community_id, user.username, "households.import", "住户名单", summary
        )
    return await _page(request, user, summary=summary)


@routes.post("/console/visits/invite")
async def invite(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    form = await checked_form(request, user)
    catalog = catalog_of(request, user)
    grids = {g.id: g.name for g in catalog.document.community.grids}
    grid_key = form.get("grid", "")
    if grid_key not in grids:
        return await _page(request, user, problems=["请选择一个网格。"], status=400)
    zone = ZoneInfo(catalog.document.community.timezone)
    async with request.app[keys.SESSIONMAKER].begin() as session:
        code, expires = await create_grid_invite(
            session,
            user.community_id,
            grid_key,
            ttl=dt.timedelta(hours=INVITE_HOURS),
            created_by=user.username,
        )
        await audit(session, user.community_id, user.username, "grid.invite", grids[grid_key])
    shown = {
        "grid": grids[grid_key],
        "code": code,
        "until": f"{expires.astimezone(zone):%Y-%m-%d %H:%M}",
    }
    return await _page(request, user, invite=shown)


@routes.post("/console/visits/tasks/{id:\\d+}/done")
async def task_done(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    await checked_form(request, user)
    task_id = int(request.match_info["id"])
    async with request.app[keys.SESSIONMAKER].begin() as session:
        task = await session.get(models.VisitFollowUp, task_id)
        if task is None or task.community_id != user.community_id:
            raise web.HTTPNotFound(text="没有这条跟进待办。")
        if await repo.close_task(
            session,
            user.community_id,
            task_id,
            done_by=f"staff:{user.username}",
            now=request.app[keys.CLOCK].now(),
        ):
            household = await session.get(models.Household, task.household_id)
            where = homes.label(household) if household else ""
            await audit(
                session, user.community_id, user.username, "visit.follow_up_done", where, task.note
            )
    raise web.HTTPFound("/console/visits")


@routes.post("/console/visits/workers/{id:\\d+}/unbind")
async def unbind_worker(request: web.Request) -> web.Response:
    """A grid worker who left: their chat no longer reaches the grid's households."""
    user = require(request, *STAFF)
    await checked_form(request, user)
    catalog = catalog_of(request, user)
    grids = {g.id: g.name for g in catalog.document.community.grids}
    async with request.app[keys.SESSIONMAKER].begin() as session:
        worker = await repo.unbind_worker(session, user.community_id, int(request.match_info["id"]))
        if worker is not None:
            zone = ZoneInfo(catalog.document.community.timezone)
            await audit(
                session,
                user.community_id,
                user.username,
                "grid.unbind",
                f"{grids.get(worker.grid_key, '其他网格')}网格员{worker.name or ''}",
                f"{worker.bound_at.astimezone(zone):%Y-%m-%d}绑定",
            )
    raise web.HTTPFound("/console/visits")
