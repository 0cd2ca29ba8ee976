"""The learning inbox in the console (学习箱): teach the bot what residents mean.

Messages the bot did not understand (matched nothing, had to offer several
services, or guessed wrong) are shown grouped by similar wording, largest groups
first, with examples and the services that came closest. One decision per group
teaches the bot a phrase: a way of asking for a service, a way of asking a FAQ
question, or words to leave alone. It takes effect at once in this process and
within the catalog poll's interval in every other one (``catalog/learned.py``).

Staff and admin see the page; deciding changes what the bot understands, as a
catalog import does, so only the roles that may import a catalog (admin) decide.
The page speaks of services by their titles, never by ids.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from bot import keys
from bot.web.auth import checked_form, require
from bot.web.params import MAX_ID, form_int, query_int, whole_number
from bot.web.scope import tenant_of
from catalog.learned import is_stale, phrase_of, phrase_problem
from catalog.model import Catalog
from storage.repositories.inbox import (
    FORGET,
    INBOX_WINDOW,
    DecisionRow,
    GroupCache,
    InboxGroup,
    decide,
    decisions_in_effect,
    inbox_page,
    learning_of,
)
from storage.repositories.users import SignedIn

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STAFF = ("staff", "admin")
DECIDERS = ("admin",)
"""Who may teach the bot: the roles that may import a catalog (bot/web/catalog_admin)."""
GROUPS = web.AppKey("learning_groups", dict)
"""This app's cache of the inbox's grouping (one per database)."""
PER_PAGE = 20
DECISIONS_SHOWN = 100

REASONS_ZH = {"none": "没听懂", "ambiguous": "拿不准", "rejected": "猜错了"}
DONE_ZH = {
    "synonym": "记住了：以后居民这样说，机器人就知道是这项服务。",
    "faq": "记住了：以后居民这样问，机器人会用这条问答回复。",
    "ignore": "记住了：以后居民只说这句话，机器人不会当成需求。",
    FORGET: "已撤销，机器人不再按这个说法理解。",
}


def setup(app: web.Application) -> None:
    app[GROUPS] = {}
    app.add_routes(routes)


@routes.get("/console/learning")
async def learning_page(request: web.Request) -> web.Response:
    user = require(request, *STAFF)
    page = query_int(request, "page", label="页码", default=1, low=1, high=100_000)
    catalog = tenant_of(request, user).catalog.current
    hidden = (
        frozenset()
        if user.role == "admin"
        else frozenset(i.id for i in catalog.items if i.confidential)
    )
    cache: GroupCache = request.app[GROUPS]
    async with request.app[keys.READER]() as session:
        found = await inbox_page(
            session,
            user.community_id,
            page=page,
            per_page=PER_PAGE,
            hidden_items=hidden,
            cache=cache,
        )
        decisions = await decisions_in_effect(session, user.community_id)
    zone = ZoneInfo(catalog.document.community.timezone)
    may_decide = user.role in DECIDERS
    context = {
        "community": catalog.community_name,
        "user": user,
        "unit_name": "",
        "may_decide": may_decide,
        "groups": [_group(g, catalog, hidden) for g in found.groups],
        "page": found.page,
        "pages": found.pages,
        "pager": [(n, str(URL("/console/learning").with_query(page=n))) for n in _pager(found)],
        "grouped": found.grouped,
        "beyond": found.open_messages > INBOX_WINDOW,
        "window": INBOX_WINDOW,
        "items": _items_by_category(catalog) if may_decide else [],
        "faqs": [(f.id, f.questions[0]) for f in catalog.document.faq] if may_decide else [],
        "decisions": [_decision(d, catalog, zone) for d in reversed(decisions[-DECISIONS_SHOWN:])],
        "done": DONE_ZH.get(request.query.get("done", ""), ""),
    }
    return aiohttp_jinja2.render_template("learning.html", request, context)


def _pager(found: Any) -> list[int]:
    """Page numbers to link: the first, the last and those near the current one."""
    near = range(max(1, found.page - 3), min(found.pages, found.page + 3) + 1)
    return sorted({1, found.pages, *near})


def _group(group: InboxGroup, catalog: Catalog, hidden: frozenset[str]) -> dict[str, Any]:
    titles = {i.id: i.title for i in catalog.items}
    closest = [(c, titles[c]) for c in group.closest if c in titles and c not in hidden]
    return {
        "phrase": group.phrase,
        "count": group.count,
        "examples": group.examples,
        "reasons": "、".join(
            f"{REASONS_ZH[r]} {n} 次" for r, n in sorted(group.reasons.items()) if r in REASONS_ZH
        ),
        "closest": closest,
        "messages": ",".join(str(i) for i in group.message_ids),
    }


def _items_by_category(catalog: Catalog) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (category, [(i.id, i.title) for i in catalog.items_in(category)])
        for category in catalog.categories
    ]


def _decision(row: DecisionRow, catalog: Catalog, zone: ZoneInfo) -> dict[str, Any]:
    stale = is_stale(catalog.document, row.learned)
    if row.action == "synonym":
        meaning = (
            "原来对应的服务已不在清单里"
            if stale
            else f"「{catalog.item(row.target or '').title}」的说法"
        )
    elif row.action == "faq":
        questions = {f.id: f.questions[0] for f in catalog.document.faq}
        meaning = (
            "原来对应的问答已不在清单里"
            if stale
            else f"问答「{questions[row.target or '']}」的问法"
        )
    else:
        meaning = "不用理会的话"
    return {
        "phrase": row.phrase,
        "meaning": meaning,
        "stale": stale,
        "by": row.decided_by,
        "at": f"{row.decided_at.astimezone(zone):%m-%d %H:%M}",
    }


@routes.post("/console/learning")
async def decide_group(request: web.Request) -> web.StreamResponse:
    user = _decider(request)
    form = await checked_form(request, user)
    page = form_int(form.get("page", ""), "page", label="页码", default=1, low=1, high=100_000)
    action = form.get("action", "")
    phrase = phrase_of(form.get("phrase", ""))
    problem = phrase_problem(phrase)
    if problem:
        raise web.HTTPBadRequest(text=problem)
    tenant = tenant_of(request, user)
    catalog = tenant.catalog.current
    target: str | None = None
    if action == "synonym":
        target = form.get("item", "")
        if not catalog.has_item(target):
            raise web.HTTPBadRequest(text="请先选一项服务。")
        note = f"设为「{catalog.item(target).title}」的说法"
    elif action == "faq":
        target = form.get("faq", "")
        entry = next((f for f in catalog.document.faq if f.id == target), None)
        if entry is None:
            raise web.HTTPBadRequest(text="请先选一条问答。")
        note = f"设为问答「{entry.questions[0]}」的问法"
    elif action == "ignore":
        note = "设为不用理会的话"
    else:
        raise web.HTTPBadRequest(text="请选择怎么处理这类话。")
    messages = _message_ids(form.get("messages", ""))
    async with request.app[keys.SESSIONMAKER].begin() as session:
        await decide(
            session,
            community_id=user.community_id,
            phrase=phrase,
            action=action,
            target=target,
            decided_by=user.username,
            messages=messages,
            note=f"{note}（处理了 {len(messages)} 条留言）" if messages else note,
        )
    await _relearn(request, user)
    raise web.HTTPFound(str(URL("/console/learning").with_query(page=page, done=action)))


@routes.post("/console/learning/forget")
async def forget(request: web.Request) -> web.StreamResponse:
    user = _decider(request)
    form = await checked_form(request, user)
    phrase = phrase_of(form.get("phrase", ""))
    if phrase_problem(phrase):
        raise web.HTTPBadRequest(text="没有找到这个说法。")
    async with request.app[keys.SESSIONMAKER].begin() as session:
        known = {d.phrase for d in await decisions_in_effect(session, user.community_id)}
        if phrase not in known:
            raise web.HTTPConflict(text="这个说法已经撤销了。")
        await decide(
            session,
            community_id=user.community_id,
            phrase=phrase,
            action=FORGET,
            target=None,
            decided_by=user.username,
            note="撤销学会的说法",
        )
    await _relearn(request, user)
    raise web.HTTPFound(str(URL("/console/learning").with_query(done=FORGET)))


def _decider(request: web.Request) -> SignedIn:
    user = require(request, *STAFF)
    if user.role not in DECIDERS:
        raise web.HTTPForbidden(text="只有管理员可以教机器人新的说法，您可以查看，但不能处理。")
    return user


def _message_ids(text: str) -> list[int]:
    """The group's message ids the form carries (at most the inbox's window)."""
    ids = [whole_number(part.strip(), 1, MAX_ID) for part in text.split(",")[:INBOX_WINDOW]]
    return [i for i in ids if i is not None]


async def _relearn(request: web.Request, user: SignedIn) -> None:
    """Apply the decisions in this process now; the others poll for them."""
    started = time.perf_counter()
    async with request.app[keys.READER]() as session:
        learning = await learning_of(session, user.community_id)
    await tenant_of(request, user).catalog.relearn(learning)
    log.info(
        "learning of %s: revision %d applied in %.2f s",
        user.community_id,
        learning.revision,
        time.perf_counter() - started,
    )
