"""居民信息 in the console, for residents without a smartphone: staff look a resident up
by phone or name, read them what is kept (我的信息), and record the consent they give
in person or withdraw (撤回同意). Every look and every record is audited."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from bot import keys
from bot.privacy import consent
from bot.privacy.kept import kept_about
from bot.web import access
from bot.web.auth import checked_form, require
from bot.web.params import path_id
from bot.web.scope import catalog_of
from catalog.answers import mask_phone
from handlers.privacy_texts import consent_line
from storage.repositories import consents as repo
from storage.repositories.users import audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
ACTIONS = {"given": access.CONSENT_IN_PERSON, "withdrawn": access.CONSENT_WITHDRAWN}


def setup(app: web.Application) -> None:
    app.add_routes(routes)


@routes.get("/console/privacy")
@aiohttp_jinja2.template("privacy.html")
async def look_up(request: web.Request) -> dict[str, Any]:
    user = require(request, *STAFF)
    catalog = catalog_of(request, user)
    zone = ZoneInfo(catalog.document.community.timezone)
    said = request.query.get("q", "").strip()[:100]
    found: list[dict[str, Any]] = []
    if said:
        async with request.app[keys.READER]() as session:
            for resident in await repo.residents_named(session, user.community_id, said):
                info = await kept_about(session, user.community_id, resident.id)
                if info is None:
                    continue
                found.append(
                    {
                        "id": resident.id,
                        "name": info.name or "（未留称呼）",
                        "phone": mask_phone(info.phone) if info.phone else "没有",
                        "addresses": "、".join(info.addresses) or "没有",
                        "orders": [f"{o.code} {o.title}（{o.status}）" for o in info.open_orders],
                        "wechat": resident.openid is not None,
                        "consent": consent_line(info, zone),
                        "current": info.current,
                    }
                )
                access.record(
                    request, user, access.VIEW_RESIDENT, access.who(info.name, info.phone)
                )
    return {
        "community": catalog.community_name,
        "user": user,
        "unit_name": "",
        "q": said,
        "found": found,
        "done": request.query.get("done", ""),
    }


@routes.post("/console/privacy/{id}")
async def record(request: web.Request) -> web.StreamResponse:
    """Consent given in person (the notice read to them) or withdrawn. Keyed by the
    answer it follows, so a double click records once."""
    user = require(request, *STAFF)
    form = await checked_form(request, user)
    action = form.get("action", "")
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text="请选择“同意”或“撤回同意”。")
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER].begin() as session:
        resident = await repo.resident_in(session, user.community_id, path_id(request))
        if resident is None:
            raise web.HTTPNotFound(text="没有找到这位居民。")
        latest = await repo.latest(session, resident.id)
        key = f"console:{resident.id}:{action}:{latest.id if latest else 0}"
        target = access.who(resident.name, resident.phone)
        repeated = latest is not None and latest.action == action
        if repeated and (action == consent.WITHDRAWN or consent.is_current(latest)):
            pass  # a second click: the first was recorded
        elif action == consent.GIVEN:
            await consent.give_in_person(session, resident, key=key, actor=user.username, now=now)
            await audit(session, user.community_id, user.username, ACTIONS[action], target)
        else:
            await consent.withdraw(
                session,
                resident,
                message_key=key,
                now=now,
                method=consent.IN_PERSON,
                actor=user.username,
            )
            await audit(session, user.community_id, user.username, ACTIONS[action], target)
        # A withdrawal forgets the phone: the page then finds them by name.
        said = form.get("q", "") if resident.phone or not resident.name else resident.name
    raise web.HTTPFound(URL("/console/privacy").with_query(q=said, done="已记录。"))
