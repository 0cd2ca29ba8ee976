"""The staff console and the unit portal (server-rendered, role-checked).

Staff (and admin) see the order board, an order's history and its actions, the
转人工 queue, unmet needs and the evaluation; admin also the audit log. Orders of
confidential items (廉情监督反映) are shown to their unit and to admin only, never
to community staff. Unit members see their own unit's orders in the portal and move
them on. Every action checks the role and the CSRF token, goes through the order
state machine, notifies as a chat command would, and is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from bot import keys
from bot.orders import domain, effects
from bot.web import access, board, deliveries, figures
from bot.web.auth import checked_form, require
from bot.web.exports import table_file
from bot.web.params import path_id, query_int, whole_number
from bot.web.scope import catalog_of
from catalog.answers import parse_phone
from catalog.forms import questions_for
from catalog.normalize import normalize
from catalog.schema import SLOT_QUESTION
from storage import models
from storage.order_status import IllegalTransition, OrderStatus
from storage.repositories import deliveries as repo_deliveries
from storage.repositories import handoffs as repo_handoffs
from storage.repositories import ordering, remarks
from storage.repositories.evaluation import unit_months
from storage.repositories.proxy import ProxyOrderError
from storage.repositories.users import SignedIn, audit

log = logging.getLogger(__name__)
HANDOFF_CLOSED = "这次人工服务已经结束，谢谢您。有事可以直接跟我说，或回复“转人工”再找工作人员。"
"""Told to the resident when staff close a 转人工: their next message goes to the bot."""
routes = web.RouteTableDef()
STAFF = ("staff", "admin")


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    deliveries.setup(app)
    app[keys.LINKS].extend(
        [
            keys.Link(
                "/console",
                "工作台",
                "社区工作人员登录后处理订单、转人工、需求清单和考评",
                "Staff console",
            ),
            keys.Link(
                "/portal", "单位入口", "共建单位成员登录后查看和办理本单位的订单", "Unit portal"
            ),
        ]
    )


def _context(request: web.Request, user: SignedIn, **values: Any) -> dict[str, Any]:
    catalog = catalog_of(request, user)
    unit_name = next((u.name for u in catalog.units if u.id == user.unit_key), "")
    return {"community": catalog.community_name, "user": user, "unit_name": unit_name, **values}


def _zone(request: web.Request, user: SignedIn) -> ZoneInfo:
    return ZoneInfo(catalog_of(request, user).document.community.timezone)


def _visible(query: Any, user: SignedIn) -> Any:
    """Confidential items: their unit and admin only."""
    if user.role == "staff":
        return query.where(models.Item.confidential.is_(False))
    if user.role == "unit":
        return query.where(models.Order.unit_id == user.unit_id)
    return query


# --- the order board ---------------------------------------------------------------------


@routes.get("/console")
async def front(request: web.Request) -> web.Response:
    return await _board(request, require(request, *STAFF))


async def _board(
    request: web.Request,
    user: SignedIn,
    problem: str | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> web.Response:
    """The board; after a refused proxy order, with the problem, what was typed, and
    each field's reason next to it (``errors``)."""
    catalog = catalog_of(request, user)
    late = await _late(request, user)
    context = _context(
        request,
        user,
        problem=problem,
        form=form or {},
        errors=errors or {},
        proxy_items=[(i.id, i.title) for i in catalog.items if not i.confidential],
        proxy_slots=await _proxy_slots(request, user),
        waiting=await _waiting_for_staff(request, user),
        **await _orders(request, user, "/console", late),
    )
    async with request.app[keys.READER]() as session:
        undelivered = await deliveries.front_count(session, user.community_id)
        context["undelivered_total"] = undelivered
        context["counts"] = await board.front_counts(
            session, user.community_id, lambda q: _visible(q, user), late, undelivered
        )
    status = 400 if problem else 200
    return aiohttp_jinja2.render_template("console.html", request, context, status=status)


WAITING_FOR_STAFF = (
    (OrderStatus.RETURN_ASKED, "个退单申请等您审核"),
    (OrderStatus.MISROUTED, "个订单单位说不归他们管，等您改派"),
    (OrderStatus.RETURNED, "个退单已同意，等您改派"),
)


async def _waiting_for_staff(request: web.Request, user: SignedIn) -> list[dict[str, Any]]:
    """Orders only staff can move on (a 退单 to decide, an order to re-dispatch)."""
    query = _visible(
        select(models.Order.status, func.count(models.Order.id))
        .join(models.Item, models.Order.item_id == models.Item.id)
        .where(
            models.Order.community_id == user.community_id,
            models.Order.status.in_([s.value for s, _ in WAITING_FOR_STAFF]),
        )
        .group_by(models.Order.status),
        user,
    )
    async with request.app[keys.READER]() as session:
        counts = dict((await session.execute(query)).all())
    return [
        {"status": status.value, "count": counts[status.value], "words": words}
        for status, words in WAITING_FOR_STAFF
        if counts.get(status.value)
    ]


async def _proxy_slots(
    request: web.Request, user: SignedIn
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The slots still to come that have places left, by item, in the words staff know
    them by (the day, the time, the topic, the places left), never the catalog's slot
    ids. A slot's value names its item too (``item@slot``): choosing it is enough.

    Weekly classes are listed for the weeks a resident could book them in chat, by the
    keys their dated slots get when booked (``ordering.upcoming_slots``)."""
    catalog = catalog_of(request, user)
    zone = _zone(request, user)
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.READER]() as session:
        rows = await session.execute(
            select(
                models.Item.key,
                models.ItemSlot.key,
                models.ItemSlot.capacity,
                models.ItemSlot.booked,
            )
            .join(models.Item, models.ItemSlot.item_id == models.Item.id)
            .where(
                models.Item.community_id == user.community_id,
                models.ItemSlot.retired_at.is_(None),
                models.ItemSlot.starts_at > now,
            )
        )
        left = {
            (item, slot): None if capacity is None else max(capacity - booked, 0)
            for item, slot, capacity, booked in rows.all()
        }
    today = now.astimezone(zone).date()
    grouped = []
    for item in catalog.items:
        if item.confidential:
            continue
        found: list[tuple[dt.datetime, str, str | None, int | None]] = [
            (s.start.replace(tzinfo=zone), s.id, s.title, s.capacity) for s in item.slots
        ]
        for index, weekly in enumerate(item.weekly):
            for ahead in range(ordering.WEEKS_AHEAD * 7):
                day = today + dt.timedelta(days=ahead)
                if day.isoweekday() == weekly.weekday:
                    starts = dt.datetime.combine(day, weekly.start, zone)
                    found.append((starts, f"w{index}-{day:%Y%m%d}", None, weekly.capacity))
        options = []
        for starts, key, title, capacity in sorted(found, key=lambda f: f[0]):
            remaining = left.get((item.id, key), capacity)
            if starts <= now or remaining == 0:
                continue
            label = f"{starts:%m月%d日} 周{WEEKDAYS_ZH[starts.weekday()]} {starts:%H:%M}"
            label += f" {title}" if title else ""
            label += f"（还剩 {remaining} 个名额）" if remaining is not None else "（名额不限）"
            options.append((f"{item.id}@{key}", label))
        if options:
            grouped.append((item.title, options))
    return grouped


WEEKDAYS_ZH = "一二三四五六日"
PROXY_FIELDS = ("item", "name", "phone", "building", "session", "people", "note", "consent")


@routes.post("/console/proxy")
async def proxy_order(request: web.Request) -> web.StreamResponse:
    """代办: staff order for a resident who has no smartphone. A refusal shows the form
    again with everything typed and the reason next to the field at fault."""
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "") for name in PROXY_FIELDS}
    item_key, _, slot_key = form["session"].strip().rpartition("@")
    if not item_key:  # a slot chosen without its item (an older page, a script)
        item_key = form["item"]
    else:
        form["item"] = item_key  # the slot chosen names its item
    phone = parse_phone(form["phone"])
    name = form["name"].strip()[:50]
    people = whole_number(form["people"].strip() or "1", 1, 100)
    errors = {}
    if not name:
        errors["name"] = "请填写居民的称呼。"
    if phone is None:
        errors["phone"] = "手机号码不对，请填写11位手机号。"
    if people is None:
        errors["people"] = "人数请填写 1 到 100 之间的整数。"
    if form["consent"] != "yes":  # 个人信息保护法: told, and agreed, before it is kept
        errors["consent"] = "请先告诉居民电话和地址的用途，居民同意后再勾选。"
    if errors or phone is None or people is None:
        return await _board(request, user, "；".join(errors.values()), form, errors)
    catalog = catalog_of(request, user)
    try:
        async with request.app[keys.SESSIONMAKER].begin() as session:
            order, _ = await domain.place_proxy_order(
                session,
                catalog=catalog,
                policy=request.app[keys.POLICY],
                now=request.app[keys.CLOCK].now(),
                item_key=item_key,
                name=name,
                phone=phone,
                building=form["building"].strip() or None,
                slot_key=slot_key.strip() or None,  # the form's field is ``session``
                people=people,
                note=form["note"].strip()[:500],
                staff=user.username,
                community_id=user.community_id,
            )
            await audit(session, user.community_id, user.username, "proxy_order", order.code, name)
            code = order.code
    except ProxyOrderError as exc:
        where = {exc.field if exc.field in PROXY_FIELDS else "item": exc.for_staff}
        return await _board(request, user, exc.for_staff, form, where)
    raise web.HTTPFound(f"/console/orders/{code}")


@routes.get("/portal")
@aiohttp_jinja2.template("portal.html")
async def portal(request: web.Request) -> dict[str, Any]:
    user = require(request, "unit")
    catalog = catalog_of(request, user)
    async with request.app[keys.READER]() as session:
        months = await unit_months(
            session,
            user.community_id,
            _zone(request, user),
            figures.rules(request.app, catalog),
            unit=user.unit_key,
            include_confidential=True,  # the unit's own orders, confidential ones too
        )
    weights = request.app[keys.SETTINGS].evaluation_weights_tuple
    return _context(
        request,
        user,
        services=[i.title for i in catalog.items if i.unit == user.unit_key],
        figures=[m.as_row(weights) for m in months][:6],
        min_sample=request.app[keys.SETTINGS].evaluation_min_sample,
        **await _orders(request, user, "/portal"),
    )


PAGE_SIZES = (20, 50, 100)
PAGE_SIZE = 50
MAX_PAGE = 100_000
EXPORT_LIMIT = 20_000
"""Rows of one export at most (a spreadsheet of every order in years, filtered)."""
SHOWS = ("new", "overdue", "followup")
"""The front page's counts as filters of the board (``show=overdue``)."""


async def _late(request: web.Request, user: SignedIn) -> dict[int, dt.datetime]:
    """The open orders the user may see that are past their unit's promise."""
    rules = figures.rules(request.app, catalog_of(request, user))
    async with request.app[keys.READER]() as session:
        return await board.overdue(session, user.community_id, rules, lambda q: _visible(q, user))


def _board_query(
    request: web.Request, user: SignedIn, late: dict[int, dt.datetime]
) -> tuple[Any, dict[str, Any]]:
    """The board's query (a function of the columns wanted) for the filters in the
    query string, and the filters as the page shows them.

    Every filter is a condition of the query itself, so the count and the pages cover
    every matching order, however old (never a filter over the newest few)."""
    query_args = request.query
    status = query_args.get("status") or None
    unit = query_args.get("unit") or None
    item_key = query_args.get("item") or None
    grid = query_args.get("grid") or None
    day = query_args.get("date") or None
    show = query_args.get("show") if query_args.get("show") in SHOWS else None
    undelivered = query_args.get("undelivered") == "1" and user.role != "unit"
    zone = _zone(request, user)
    conditions = [models.Order.community_id == user.community_id]
    if status:
        conditions.append(models.Order.status == status)
    if unit:
        conditions.append(models.Unit.key == unit)
    if item_key:
        conditions.append(models.Item.key == item_key)
    if grid:
        conditions.append(func.coalesce(models.Order.grid_key, models.Resident.grid_key) == grid)
    if day:
        start, end = _local_day(day, zone)
        conditions += [models.Order.created_at >= start, models.Order.created_at < end]
    if undelivered:
        conditions.append(repo_deliveries.undelivered_condition(user.community_id))
    if show == "new":
        conditions.append(models.Order.status.in_(board.NEW))
    elif show == "overdue":
        conditions.append(models.Order.id.in_(list(late) or [-1]))
    elif show == "followup":
        conditions.append(board.awaiting_followup())

    def board_query(*columns: Any) -> Any:
        query = (
            select(*columns)
            .join(models.Item, models.Order.item_id == models.Item.id)
            .join(models.Unit, models.Order.unit_id == models.Unit.id)
            .join(models.Resident, models.Order.resident_id == models.Resident.id)
            .where(*conditions)
        )
        return _visible(query, user)

    filters = {
        "status": status,
        "unit": unit,
        "item": item_key,
        "grid": grid,
        "date": day,
        "show": show,
        "undelivered": undelivered,
    }
    return board_query, filters


ROW_COLUMNS = (
    models.Order,
    models.Item.title,
    models.Unit.name,
    models.Item.confidential,
    models.Resident.name,
    models.Resident.grid_key,
)
NO_NAME = "未留姓名"


def _name_of(order: models.Order, resident_name: str | None) -> str:
    """The 称呼 an order shows: its own answer, else the resident's, but none once the
    order's contact details were anonymised (erasure, retention)."""
    if order.contact_removed_at is not None:
        return NO_NAME
    return (order.answers or {}).get("name") or resident_name or NO_NAME


def _row(
    row: Any, zone: ZoneInfo, grid_names: dict[str, str], late: dict[int, dt.datetime]
) -> dict[str, Any]:
    """An order as the board, the portal and the export show it: no internal ids."""
    order, title, unit_name, confidential, name, resident_grid = row
    due = late.get(order.id)
    return {
        "id": order.id,
        "code": order.code,
        "title": title,
        "unit": unit_name,
        "status": OrderStatus(order.status).label,
        "status_value": order.status,
        "created": f"{order.created_at.astimezone(zone):%Y-%m-%d %H:%M}",
        "name": _name_of(order, name),
        "grid": grid_names.get(order.grid_key or resident_grid or "", ""),
        "building": (order.answers or {}).get("building") or "",
        # The order's own answer only: an order anonymised after it closed must not
        # show the phone its resident still has on file for another, open order.
        "phone": (order.answers or {}).get("phone") or "",
        "confidential": confidential,
        "overdue": f"{due.astimezone(zone):%m-%d %H:%M}" if due else "",
    }


async def _orders(
    request: web.Request,
    user: SignedIn,
    listing: str,
    late: dict[int, dt.datetime] | None = None,
) -> dict[str, Any]:
    """One page of the orders the user may see, filtered by the query string;
    ``listing`` is the page's path, for the links to the other pages."""
    if late is None:
        late = await _late(request, user)
    board_query, filters = _board_query(request, user, late)
    zone = _zone(request, user)
    wanted = query_int(request, "page", label="页码", default=1, low=1, high=MAX_PAGE)
    size = query_int(request, "size", label="每页单数", default=PAGE_SIZE, low=1, high=100)
    size = size if size in PAGE_SIZES else PAGE_SIZE
    async with request.app[keys.READER]() as session:
        total = int(await session.scalar(board_query(func.count(models.Order.id))) or 0)
        pages = max(1, math.ceil(total / size))
        page = min(wanted, pages)
        rows = (
            await session.execute(
                board_query(*ROW_COLUMNS)
                .order_by(models.Order.created_at.desc(), models.Order.id.desc())
                .limit(size)
                .offset((page - 1) * size)
            )
        ).all()
        ids = [row[0].id for row in rows]
        not_delivered = await deliveries.board_counts(session, ids)
        attached = dict(
            (
                await session.execute(
                    select(models.OrderAttachment.order_id, func.count(models.OrderAttachment.id))
                    .where(models.OrderAttachment.order_id.in_(ids))
                    .group_by(models.OrderAttachment.order_id)
                )
            ).all()
        )
    catalog = catalog_of(request, user)
    grid_names = {g.id: g.name for g in catalog.document.community.grids}
    orders = []
    for row in rows:
        shown = _row(row, zone, grid_names, late)
        shown["undelivered"] = not_delivered.get(shown["id"], 0)
        shown["attached"] = attached.get(shown["id"], 0)
        orders.append(shown)

    def page_link(number: int) -> str:
        return str(URL(listing).with_query({**request.query, "page": str(number)}))

    def export_link(kind: str) -> str:
        query = {k: v for k, v in request.query.items() if k not in ("page", "size")}
        return str(URL(f"{listing}/export.{kind}").with_query(query))

    return {
        "orders": orders,
        "paging": {
            "total": total,
            "page": page,
            "pages": pages,
            "size": size,
            "sizes": [
                (n, str(URL(listing).with_query({**request.query, "size": str(n), "page": "1"})))
                for n in PAGE_SIZES
            ],
            "previous": page_link(page - 1) if page > 1 else None,
            "next": page_link(page + 1) if page < pages else None,
        },
        "exports": {"csv": export_link("csv"), "xlsx": export_link("xlsx")},
        "filters": filters,
        "statuses": [(s.value, s.label) for s in OrderStatus],
        "units": [(u.id, u.name) for u in catalog.units],
        "grids": [(g.id, g.name) for g in catalog.document.community.grids],
    }


EXPORT_COLUMNS = {
    # Opened by staff in a spreadsheet: Chinese headers, the order's code (what
    # residents and units quote), never a database id.
    "code": "订单号",
    "title": "服务",
    "unit": "承办单位",
    "status": "状态",
    "name": "居民称呼",
    "phone": "电话",
    "grid": "网格",
    "building": "地址",
    "created": "下单时间",
    "overdue": "超时（承诺到期时间）",
}


@routes.get("/console/export.{kind}")
async def console_export(request: web.Request) -> web.StreamResponse:
    return await _export(request, require(request, *STAFF))


@routes.get("/portal/export.{kind}")
async def portal_export(request: web.Request) -> web.StreamResponse:
    return await _export(request, require(request, "unit"))


async def _export(request: web.Request, user: SignedIn) -> web.StreamResponse:
    """The board's orders, as filtered, as a CSV or Excel file: the same query as the
    board (so the same scope: a unit its own orders, staff no confidential ones)."""
    kind = request.match_info["kind"]
    if kind not in ("csv", "xlsx"):
        raise web.HTTPNotFound(text="只能导出表格（CSV 或 Excel）。")
    late = await _late(request, user)
    board_query, _ = _board_query(request, user, late)
    async with request.app[keys.READER]() as session:
        rows = (
            await session.execute(
                board_query(*ROW_COLUMNS)
                .order_by(models.Order.created_at.desc(), models.Order.id.desc())
                .limit(EXPORT_LIMIT)
            )
        ).all()
    zone = _zone(request, user)
    grid_names = {g.id: g.name for g in catalog_of(request, user).document.community.grids}
    shown = [_row(row, zone, grid_names, late) for row in rows]
    for order in shown:
        order["phone"] = access.phone_for(user, order["phone"])
    table = [[order[key] for key in EXPORT_COLUMNS] for order in shown]
    header = list(EXPORT_COLUMNS.values())
    phones = "电话完整" if user.role in access.FULL_PHONE_ROLES else "电话已遮挡"
    filtered = "按筛选条件" if request.query else "全部"
    access.record(
        request, user, access.EXPORT_ORDERS, f"{len(table)} 张订单", f"{filtered}；{phones}"
    )
    day = f"{request.app[keys.CLOCK].now().astimezone(zone):%Y%m%d}"
    return await table_file(kind, "订单", f"orders-{day}", header, table)


DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _local_day(text: str, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC bounds of a calendar day in the community's time zone; 400 for anything
    but a real YYYY-MM-DD date (the log names the parameter and value)."""
    try:
        if not DAY.fullmatch(text):
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
        start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        log.info("refused date=%r: not a calendar day (YYYY-MM-DD)", text[:40])
        raise web.HTTPBadRequest(text="日期不对，请按 2026-01-31 这样填写。") from None


@routes.get("/console/orders/{code}")
async def order_detail(request: web.Request) -> web.Response:
    user = require(request, *STAFF, "unit")
    return await _order_page(request, user, request.match_info["code"])


async def _order_page(
    request: web.Request, user: SignedIn, code: str, problem: str | None = None, status: int = 200
) -> web.Response:
    """An order, its history and the actions its status allows; after a refused
    action, with why (the page shows the order as it is now)."""
    zone = _zone(request, user)
    async with request.app[keys.READER]() as session:
        order = await _order_for(session, user, code)
        facts = await effects.load_facts(session, catalog_of(request, user), order)
        events = (
            await session.scalars(
                select(models.OrderEvent)
                .where(models.OrderEvent.order_id == order.id)
                .order_by(models.OrderEvent.at, models.OrderEvent.id)
            )
        ).all()
        not_delivered = (
            await deliveries.for_order(session, order.id, zone) if user.role in STAFF else []
        )
        attachments = (
            await session.scalars(
                select(models.OrderAttachment)
                .where(models.OrderAttachment.order_id == order.id)
                .order_by(models.OrderAttachment.created_at, models.OrderAttachment.id)
            )
        ).all()
        resident = await session.get(models.Resident, order.resident_id)
    shown = [
        what
        for what, there in (
            ("电话", facts.phone),
            ("地址", (order.answers or {}).get("building")),
            ("照片或位置", attachments),
        )
        if there
    ]
    if shown:
        access.record(request, user, access.VIEW_CONTACT, order.code, "、".join(shown))
    late = await _late(request, user)
    catalog = catalog_of(request, user)
    grid_names = {g.id: g.name for g in catalog.document.community.grids}
    resident_grid = resident.grid_key if resident is not None else None
    due = late.get(order.id)
    context = _context(
        request,
        user,
        problem=problem,
        order=order,
        status=OrderStatus(order.status),
        item=facts.item,
        unit=facts.unit_name,
        phone=facts.phone,
        households=facts.households,  # 我也遇到: the reporter and those who joined
        starts_at=facts.starts_at.astimezone(zone) if facts.starts_at else None,
        events=[
            {
                "at": f"{e.at.astimezone(zone):%Y-%m-%d %H:%M}",
                "actor": actor_zh(e.actor),
                "from": OrderStatus(e.from_status).label if e.from_status else "",
                "to": OrderStatus(e.to_status).label,
                "note": e.note or "",
            }
            for e in events
        ],
        units=[(u.id, u.name) for u in catalog.units],
        actions=_actions(user, OrderStatus(order.status)),
        placeholders=PLACEHOLDERS,
        asked_return=_asked_return(events) if order.status == OrderStatus.RETURN_ASKED else None,
        answers=_answers(facts.item, order.answers or {}),
        deliveries=not_delivered,
        resident_name=_name_of(order, resident.name if resident is not None else None),
        grid=grid_names.get(order.grid_key or resident_grid or "", ""),
        overdue=f"{due.astimezone(zone):%Y-%m-%d %H:%M}" if due else None,
        attachments=[_attachment(a, zone) for a in attachments],
    )
    return aiohttp_jinja2.render_template("order.html", request, context, status=status)


def _attachment(row: models.OrderAttachment, zone: ZoneInfo) -> dict[str, Any]:
    """A photo (shown from WeChat's picture address) or a place (in words, with a link
    to a map: a plain link, no map script on the page)."""
    data = row.data or {}
    shown: dict[str, Any] = {
        "kind": row.kind,
        "at": f"{row.created_at.astimezone(zone):%m-%d %H:%M}",
    }
    if row.kind == "image":
        url = str(data.get("pic_url") or "")
        shown["url"] = url if url.startswith(("https://", "http://")) else ""
        return shown
    latitude, longitude = _coordinate(data.get("latitude")), _coordinate(data.get("longitude"))
    shown["label"] = str(data.get("label") or "")
    if latitude is not None and longitude is not None:
        shown["where"] = f"北纬 {latitude:.5f}，东经 {longitude:.5f}"
        shown["map"] = str(
            URL("https://uri.amap.com/marker").with_query(
                position=f"{longitude},{latitude}", name=shown["label"] or "居民发来的位置"
            )
        )
    return shown


def _coordinate(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _asked_return(events: Any) -> str:
    """The reason of the 退单 waiting for staff (its latest request)."""
    asked = [e for e in events if e.to_status == OrderStatus.RETURN_ASKED.value]
    return (asked[-1].note or "未说明原因") if asked else "未说明原因"


ROLES_ZH = {"admin": "管理员", "staff": "工作人员", "unit": "单位成员"}


def actor_zh(actor: str) -> str:
    """Who moved an order, as staff say it. Recorded as ``resident``, ``system`` or
    ``role:name``; a unit member acting by chat is recorded by their openid, which
    means nothing to staff, so unit members are not named."""
    role, _, name = actor.partition(":")
    if role == "resident":
        return "居民"
    if role == "system":
        return "系统"
    if role in ("staff", "admin") and name:
        return f"{ROLES_ZH[role]} {name}"
    return ROLES_ZH.get(role, "其他")


def _answers(item: Any, answers: dict[str, Any]) -> list[tuple[str, str]]:
    """The form's answers with the words the resident was asked (not internal ids)."""
    asked = {q.id: q for q in questions_for(item)}
    shown = []
    for key, value in answers.items():
        if value in (None, "") or key in ("phone", "people"):
            continue
        question = asked.get(key)
        if question is not None:
            label = LABELS_BY_KIND.get(question.kind) or (question.ask or key).rstrip("？?：: ")
        else:
            label = LABELS_BY_KIND.get(key, key)
        shown.append((label, value["label"] if isinstance(value, dict) else str(value)))
    return shown


LABELS_BY_KIND = {SLOT_QUESTION: "时间", "building": "地址", "name": "称呼", "notes": "补充"}


STAFF_ACTIONS = {
    "dispatch": OrderStatus.DISPATCHED,
    "escalate": OrderStatus.ESCALATED,
    "close": OrderStatus.CLOSED,
    "approve_return": OrderStatus.RETURNED,
    "refuse_return": OrderStatus.RETURN_ASKED,  # back to where it was (domain.refuse_return)
}
UNIT_ACTIONS = {
    "accept": OrderStatus.ACCEPTED,
    "start": OrderStatus.IN_SERVICE,
    "complete": OrderStatus.COMPLETED,
    "not_possible": OrderStatus.NOT_POSSIBLE,
    "misrouted": OrderStatus.MISROUTED,
    "return": OrderStatus.RETURN_ASKED,
}
LABELS = {
    "dispatch": "派单/改派",
    "escalate": "督办",
    "close": "关闭",
    "approve_return": "同意退单",
    "refuse_return": "不同意退单",
    "accept": "接单",
    "start": "开始服务",
    "complete": "办结",
    "not_possible": "办不了",
    "misrouted": "不归我管",
    "return": "申请退单",
}
REASON_NEEDED = {
    "not_possible": "请写上办不了的原因，居民会看到。",
    "return": "申请退单请写上原因，社区审核时会看到。",
}
PLACEHOLDERS = {
    "not_possible": "办不了的原因（必填，居民会看到）",
    "return": "退单原因（必填）",
    "misrouted": "应该由哪里办（可选）",
    "refuse_return": "不同意的理由（可选，单位会看到）",
}
DECIDE_RETURN = ("approve_return", "refuse_return", "close")
"""What staff may do with an order whose unit asked to return it: decide first."""


def _actions(user: SignedIn, status: OrderStatus) -> list[tuple[str, str]]:
    from storage.order_status import TRANSITIONS

    if status is OrderStatus.RETURN_ASKED:
        names = DECIDE_RETURN if user.role != "unit" else ()
        return [(name, LABELS[name]) for name in names]
    table = UNIT_ACTIONS if user.role == "unit" else STAFF_ACTIONS
    return [
        (name, LABELS[name])
        for name, to in table.items()
        if to in TRANSITIONS[status] and name not in DECIDE_RETURN
    ]


@routes.post("/console/orders/{code}/{action}")
async def order_action(request: web.Request) -> web.StreamResponse:
    user = require(request, *STAFF, "unit")
    form = await checked_form(request, user)
    action = request.match_info["action"]
    code = request.match_info["code"]
    table = UNIT_ACTIONS if user.role == "unit" else STAFF_ACTIONS
    if action not in table:
        raise web.HTTPForbidden(text="这个操作不属于您的角色。")
    wanted = table[action]
    note = form.get("note", "").strip()[:500] or None
    if action in REASON_NEEDED and not note:
        return await _order_page(request, user, code, REASON_NEEDED[action], 400)
    catalog = catalog_of(request, user)
    clock = request.app[keys.CLOCK]
    try:
        async with request.app[keys.SESSIONMAKER].begin() as session:
            order = await _order_for(session, user, code, lock=True)
            target = None
            if action == "dispatch" and form.get("unit"):
                target = await session.scalar(
                    select(models.Unit).where(
                        models.Unit.community_id == user.community_id,
                        models.Unit.key == form["unit"],
                    )
                )
                if target is None:
                    log.info("order %s: refused unit=%r: no such unit", code, form["unit"][:40])
                    raise _Refused("没有这个单位，请从列表里选择。", 400)
                note = note or f"派给{target.name}"
            try:
                said: dict[str, Any] = {
                    "actor": f"{user.role}:{user.username}",
                    "reason": note,
                    "catalog": catalog,
                    "policy": request.app[keys.POLICY],
                    "now": clock.now(),
                }
                if action == "refuse_return":  # back to where it was, not to one status
                    await domain.refuse_return(session, order, **said)
                else:
                    await domain.transition(session, order, wanted, unit=target, **said)
            except IllegalTransition as refused:
                # Most often a second click, or a colleague was quicker.
                log.info("order %s: %s", code, refused)
                raise _Refused(cannot(refused, action), 409) from None
            await audit(session, user.community_id, user.username, action, order.code, note)
    except _Refused as refused:
        # Shown after the transaction ended: on SQLite the page's own reads would
        # otherwise wait for the write lock it held.
        return await _order_page(request, user, code, refused.problem, refused.status)
    raise web.HTTPFound(f"/console/orders/{order.code}")


class _Refused(Exception):
    """An order action that cannot be done, in words for the page."""

    def __init__(self, problem: str, status: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


def cannot(refused: IllegalTransition, action: str) -> str:
    """Why the order did not move, politely: a second click is told it is done."""
    label = refused.current.label
    if refused.current is refused.wanted:
        if label.startswith("已"):
            return f"这个订单已经{label[1:]}了。"
        return f"这个订单已经是「{label}」了。"
    return f"这个订单现在是「{label}」，不能{LABELS[action]}了。"


async def _order_for(
    session: AsyncSession, user: SignedIn, code: str, *, lock: bool = False
) -> models.Order:
    query = ordering.select_order(user.community_id, code).join(
        models.Item, models.Order.item_id == models.Item.id
    )
    query = _visible(query, user)
    if lock:
        query = query.with_for_update(of=models.Order)
    order: models.Order | None = await session.scalar(query)
    if order is None:
        raise web.HTTPNotFound(text="没有这个订单，或者您无权查看。")
    return order


# --- 转人工 ----------------------------------------------------------------------------------


@routes.get("/console/handoffs")
@aiohttp_jinja2.template("handoffs.html")
async def handoffs(request: web.Request) -> dict[str, Any]:
    """The open 转人工 threads: who the resident is, what they wrote since, and
    staff replies, oldest first, until staff close them."""
    user = require(request, *STAFF)
    zone = _zone(request, user)
    async with request.app[keys.READER]() as session:
        rows = (
            await session.execute(
                select(models.Handoff, models.Resident.name, models.Resident.building)
                .outerjoin(
                    models.Resident,
                    (models.Resident.community_id == models.Handoff.community_id)
                    & (models.Resident.openid == models.Handoff.openid),
                )
                .where(
                    models.Handoff.community_id == user.community_id,
                    models.Handoff.status == repo_handoffs.OPEN,
                )
                .order_by(models.Handoff.created_at, models.Handoff.id)
            )
        ).all()
        threads = await repo_handoffs.threads(session, [h.id for h, _, _ in rows])
    addresses = sum(1 for _, _, building in rows if building)
    if addresses:
        access.record(request, user, access.VIEW_CONTACT, "转人工", f"{addresses} 位居民的地址")

    def when(moment: dt.datetime) -> str:
        return f"{moment.astimezone(zone):%m-%d %H:%M}"

    listed = []
    for handoff, name, building in rows:
        said = [
            {"who": "居民", "staff": False, "text": handoff.text, "at": when(handoff.created_at)}
        ]
        said += [
            {
                "who": "工作人员" if m.author == "staff" else "居民",
                "staff": m.author == "staff",
                "text": m.text,
                "at": when(m.at),
            }
            for m in threads[handoff.id]
        ]
        listed.append(
            {
                "id": handoff.id,
                "name": name or "未留称呼的居民",
                "building": building or "",
                "at": when(handoff.created_at),
                "messages": said,
                "answered": handoff.answered_at is not None,
                "asked": handoff.asked,
            }
        )
    return _context(request, user, limit=HANDOFF_ANSWER_LIMIT, handoffs=listed)


HANDOFF_ANSWER_LIMIT = 600
"""Characters: a customer-service text holds about 680 Chinese characters (2,048
bytes), with room for the line that says who answers."""


async def _open_handoff(session: AsyncSession, user: SignedIn, handoff_id: int) -> models.Handoff:
    handoff = await session.get(models.Handoff, handoff_id, with_for_update=True)
    if handoff is None or handoff.community_id != user.community_id:
        raise web.HTTPNotFound(text="没有找到这位居民的留言，可能已经处理了。")
    if handoff.status != repo_handoffs.OPEN:
        raise web.HTTPConflict(text="这次人工服务已经结束了。")
    return handoff


async def _tell(
    request: web.Request,
    user: SignedIn,
    session: AsyncSession,
    handoff: models.Handoff,
    key: str,
    text: str,
    now: dt.datetime,
) -> None:
    """A message to the resident of a handoff, through the outbox like any other;
    ``key`` makes it once per reply (or per closing)."""
    catalog = catalog_of(request, user)
    policy = request.app[keys.POLICY]
    key = f"handoff:{handoff.id}:{key}"
    await effects.notify_resident(session, catalog, policy, handoff.openid, key, text, now)


@routes.post("/console/handoffs/{id}/answer")
async def answer_handoff(request: web.Request) -> web.StreamResponse:
    """A reply in the thread; the handoff stays open (staff close it when done)."""
    user = require(request, *STAFF)
    handoff_id = path_id(request)
    form = await checked_form(request, user)
    text = form.get("text", "").strip()
    if not text or len(text) > HANDOFF_ANSWER_LIMIT:
        raise web.HTTPBadRequest(text=f"回复请写 1 到 {HANDOFF_ANSWER_LIMIT} 个字。")
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER].begin() as session:
        handoff = await _open_handoff(session, user, handoff_id)
        reply = await repo_handoffs.add_staff_reply(session, handoff, user.username, text, now)
        if reply is not None:  # not a double click
            said = f"社区工作人员回复：{text}"
            await _tell(request, user, session, handoff, str(reply.id), said, now)
            await audit(
                session, user.community_id, user.username, "answer_handoff", str(handoff.id), text
            )
    raise web.HTTPFound(f"/console/handoffs#handoff-{handoff_id}")


@routes.post("/console/handoffs/{id}/close")
async def close_handoff(request: web.Request) -> web.StreamResponse:
    """Staff are done: the resident is told, and what they write next goes to the bot."""
    user = require(request, *STAFF)
    handoff_id = path_id(request)
    await checked_form(request, user)
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER].begin() as session:
        handoff = await _open_handoff(session, user, handoff_id)
        handoff.status = repo_handoffs.CLOSED
        handoff.closed_at = now
        handoff.closed_by = user.username
        await _tell(request, user, session, handoff, "closed", HANDOFF_CLOSED, now)
        await audit(
            session, user.community_id, user.username, "close_handoff", str(handoff.id), None
        )
    raise web.HTTPFound("/console/handoffs")


# --- 需求清单 ---------------------------------------------------------------------------------


@routes.get("/console/needs")
@aiohttp_jinja2.template("needs.html")
async def needs(request: web.Request) -> dict[str, Any]:
    user = require(request, *STAFF)
    async with request.app[keys.READER]() as session:
        rows = (
            await session.execute(
                # Needs are kept whole, a long story too: the page shows their start.
                select(
                    func.substr(models.UnmetNeed.text, 1, EXAMPLE_LENGTH + 1),
                    models.UnmetNeed.normalized,
                )
                .where(
                    models.UnmetNeed.community_id == user.community_id,
                    models.UnmetNeed.text != "",  # erased or past its period: gone
                )
                .order_by(models.UnmetNeed.created_at.desc())
                .limit(2000)
            )
        ).all()
    groups: dict[str, dict[str, Any]] = {}
    for text, normalized in rows:
        key = _gist(normalized or normalize(text))
        group = groups.setdefault(key, {"gist": key, "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < 3:
            long = len(text) > EXAMPLE_LENGTH
            group["examples"].append(text[:EXAMPLE_LENGTH] + "…" if long else text)
    ranked = sorted(groups.values(), key=lambda g: -g["count"])
    return _context(request, user, groups=ranked)


EXAMPLE_LENGTH = 120
"""Characters of a resident's words shown as an example on the 需求清单 page."""
FILLER = re.compile(r"(请问|你好|您好|能不能|可以|一下|帮我|我想|想要|有没有|吗|呢|啊|吧|的|了)")


def _gist(text: str) -> str:
    """Similar wordings together: the message without filler, at most 8 characters."""
    return FILLER.sub("", text)[:8] or text[:8]


# --- evaluation ------------------------------------------------------------------------------


@routes.get("/console/evaluation")
async def evaluation(request: web.Request) -> web.StreamResponse:
    user = require(request, *STAFF)
    weights = request.app[keys.SETTINGS].evaluation_weights_tuple
    zone = _zone(request, user)
    rules = figures.rules(request.app, catalog_of(request, user))
    async with request.app[keys.READER]() as session:
        months = await unit_months(session, user.community_id, zone, rules)
        voices = await remarks.voices_by_unit(session, user.community_id)
        said = await remarks.recent_remarks(
            session, user.community_id, ("praise", "complaint"), limit=20
        )
    rows = [m.as_row(weights) for m in months]
    table = [[row[key] for key in EXPORT_HEADERS] for row in rows]
    header = list(EXPORT_HEADERS.values())
    if request.query.get("format") in ("xlsx", "csv"):
        return await table_file(request.query["format"], "动态考评", "evaluation", header, table)
    span = query_int(request, "months", label="统计时段", default=6, low=1, high=12)
    if span not in figures.PERIODS:
        raise web.HTTPBadRequest(text="统计时段请选一个月、近三个月、近半年或近一年。")
    this_month = figures.last_months(rules.now, zone, 1)[0]
    end = request.query.get("end", this_month)
    if not MONTH.fullmatch(end) or end > this_month:
        end = this_month
    period = figures.last_months(rules.now, zone, span, end)
    context = _context(
        request,
        user,
        rows=[row for row in rows if row["month"] in period],
        weights=weights,
        min_sample=rules.min_sample,
        complete_within=rules.complete_within_hours,
        span=span,
        periods=figures.PERIODS,
        period=figures.period_label(period),
        earlier=figures.shift_month(end, -span),
        later=figures.shift_month(end, span) if end < this_month else None,
        standings=figures.standings(months, period, weights),
        charts=figures.charts(months, period, weights),
        voices=voices,
        said=[(r, f"{r.created_at.astimezone(zone):%m-%d %H:%M}") for r in said],
    )
    return aiohttp_jinja2.render_template("evaluation.html", request, context)


MONTH = re.compile(r"20\d\d-(0[1-9]|1[0-2])")
"""A month in the evaluation page's query (``end=2026-11``)."""

EXPORT_HEADERS = {
    # Both files are opened by staff in a spreadsheet, so both say it in Chinese, and
    # name units as staff do (the catalog's unit id is an internal id, not shown).
    "month": "月份",
    "unit_name": "单位",
    "volume": "派单",
    "response_rate": "响应率(%)",
    "resolution_rate": "解决率(%)",
    "satisfaction_rate": "满意率(%)",
    "avg_accept_hours": "平均接单(小时)",
    "avg_complete_hours": "平均办结(小时)",
    "composite": "综合得分",
    "response_sample": "响应率计算单数",
    "resolution_sample": "解决率计算单数",
    "satisfaction_sample": "满意率计算单数",
    "pending": "未到期单数",
}


# --- audit -------------------------------------------------------------------------------


@routes.get("/console/audit")
@aiohttp_jinja2.template("audit.html")
async def audit_log(request: web.Request) -> dict[str, Any]:
    user = require(request, "admin")
    zone = _zone(request, user)
    async with request.app[keys.READER]() as session:
        entries = (
            await session.scalars(
                select(models.AuditEntry)
                .where(models.AuditEntry.community_id == user.community_id)
                .order_by(models.AuditEntry.at.desc())
                .limit(500)
            )
        ).all()
        total = await session.scalar(
            select(func.count(models.AuditEntry.id)).where(
                models.AuditEntry.community_id == user.community_id
            )
        )
    return _context(
        request,
        user,
        total=total,
        entries=[
            {
                "at": f"{e.at.astimezone(zone):%Y-%m-%d %H:%M}",
                "actor": e.actor,
                "action": ACTIONS_ZH.get(e.action, "其他操作"),
                "target": _audit_target(e.action, e.target),
                "detail": e.detail or "",
            }
            for e in entries
        ],
    )


ACTIONS_ZH = {
    "login": "登录",
    "proxy_order": "代办下单",
    "answer_handoff": "回复转人工",
    "close_handoff": "结束转人工",
    "broadcast": "安排推送",
    "catalog_import": "导入服务清单",
    "learn": "学习箱",
    "resend": "重新发送通知",
    "notice": "发布停水停电通知",
    "notice.withdraw": "撤回通知",
    "households.import": "导入住户名单",
    "grid.invite": "生成网格员邀请码",
    "grid.unbind": "解除网格员绑定",
    "visit.follow_up_done": "走访跟进办完",
    "group": "登记楼栋群",
    "group.edit": "修改楼栋群",
    "group_post": "标记宣传已发到群",
    "group_post.undo": "撤销宣传已发到群",
    **access.ACTIONS_ZH,
    **LABELS,
}
"""The audit log's actions (recorded in English, for operators) as staff say them."""


def _audit_target(action: str, target: str | None) -> str:
    """What an action was about: an order's code as it is; a role, a handoff or a
    broadcast in words; a catalog's content hash is an internal id, not shown."""
    if action == "login":
        return ROLES_ZH.get(target or "", "")
    if action in ("answer_handoff", "close_handoff"):
        return f"留言 {target}"
    if action == "broadcast":
        return f"推送 {target}"
    if action == "catalog_import":
        return "服务清单"
    return target or ""
