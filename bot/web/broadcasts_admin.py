"""Broadcasts in the console: compose, preview (recipients now, next send times),
confirm, and watch progress. The same checks as ``order-menu broadcast create``.

Progress is shown in staff's words: statuses and reasons in Chinese, and deliveries
whose outcome is unknown counted and explained (probably delivered, never resent),
so nobody resends a notice by hand to make sure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.jobs import schedule_words
from bot.jobs.broadcasts import (
    GAVE_UP,
    NO_CLEAR_ANSWER,
    NO_TEMPLATE,
    STALE_BATCH,
    UNFOLLOWED,
    UNKNOWN_MEANS_ZH,
    WINDOW_PASSED,
    BroadcastProblem,
    Draft,
    campaign_text,
    next_due,
    prepare,
)
from bot.jobs.schedule_words import WEEKDAYS_ZH
from bot.web.auth import checked_form, require
from bot.web.scope import catalog_of, tenant_of
from bot.wechat.customer_service import MassSender
from bot.wechat.errors import WeChatError
from catalog import topics as campaign
from storage import models
from storage.repositories.broadcasts import ABANDONED, UNREACHABLE, mass_progress, progress
from storage.repositories.users import audit

routes = web.RouteTableDef()
STAFF = ("staff", "admin")
FIELDS = (
    "topic",
    "title",
    "text",
    "grid",
    "tag",
    "at",
    "cron",
    "from",
    "until",
    "every",
    "repeat",
    "weekday",
    "monthday",
    "time",
)
"""The form's fields. A recurring notice is chosen with the widgets (``repeat``,
``weekday``, ``monthday``, ``time``) or written in words (``every``); ``cron`` is
still read, for a form posted by an older page or a script."""
REPEATS = (("", "不重复"), ("day", "每天"), ("week", "每周"), ("month", "每月"))

STATUS_ZH = {
    "sent": "已送达",
    "pending": "待发送",
    "sending": "发送中",
    "skipped": "已跳过",
    "failed": "未发出",
    "unknown": "未确认",
}
"""Delivery statuses, in the order shown."""
BROADCAST_STATUS_ZH = {"scheduled": "已安排", "done": "已完成", "cancelled": "已取消"}


def reason_zh(reason: str) -> str:
    """Why deliveries were not sent (or not confirmed), as staff would say it."""
    if reason == NO_TEMPLATE:
        return "居民超过48小时未互动，且未配置模板消息"
    if reason == UNREACHABLE:
        return "本月群发次数已用完，且48小时内没有联系过社区，公众号发不到"
    if reason == WINDOW_PASSED:
        return "轮到发送时已超过48小时未互动"
    if reason == STALE_BATCH:
        return "群发一天内没有得到微信确认，为免重复不再发送"
    if reason == UNFOLLOWED:
        return "居民已取消关注"
    if reason.startswith(NO_CLEAR_ANSWER):
        return "发送后微信没有明确答复"
    if reason == ABANDONED:
        return "发送途中服务中断"
    if reason.startswith(GAVE_UP):
        return "微信多次没有接收，已停止重试"
    if reason.startswith("errcode"):
        return "微信拒绝发送"
    return "其他原因"


def setup(app: web.Application) -> None:
    app.add_routes(routes)


def words_of(form: dict[str, str]) -> str | None:
    """The schedule the form names, in words: as written, or as the widgets chose it."""
    if form["every"]:
        return form["every"]
    day = {"week": f"周{form['weekday']}", "month": f"{form['monthday']}号", "day": "天"}
    if form["repeat"] not in day:
        return None
    return f"每{day[form['repeat']]} {form['time']}"


def when_zh(moment: dt.datetime) -> str:
    """A local send time as staff read it: 2026-07-03 10:00 周五."""
    return f"{moment:%Y-%m-%d %H:%M} 周{WEEKDAYS_ZH[moment.weekday()]}"


def schedule_zh(row: models.Broadcast, zone: ZoneInfo, now: dt.datetime) -> str:
    """When a broadcast goes out: its time, or for a recurring one its schedule in
    words and the next time (a crontab line means nothing to most staff)."""
    if row.send_at is not None:
        return when_zh(row.send_at.astimezone(zone))
    every = (schedule_words.describe(row.cron, zone) if row.cron else None) or "定期"
    if row.status != "scheduled":
        return every
    upcoming = next_due(row, zone, now)
    return f"{every}，下次 {when_zh(upcoming.astimezone(zone))}" if upcoming else every


async def _page(
    request: web.Request,
    user: Any,
    *,
    draft: Any = None,
    form: dict[str, str] | None = None,
    problem: str | None = None,
    previewed: str | None = None,
    status: int = 200,
) -> web.Response:
    catalog = catalog_of(request, user)
    async with request.app[keys.READER]() as session:
        rows = (
            await session.scalars(
                select(models.Broadcast)
                .where(models.Broadcast.community_id == catalog.community_id)
                .order_by(models.Broadcast.id.desc())
                .limit(50)
            )
        ).all()
        zone = ZoneInfo(catalog.document.community.timezone)
        topic_names = {t.id: t.name for t in campaign.topics(catalog)}
        now = request.app[keys.CLOCK].now()
        listed = []
        for row in rows:
            done = await progress(session, row.id)
            mass = await mass_progress(session, row.id)
            reasons: dict[str, int] = {}
            for reason, n in done.failures.items():
                reasons[reason_zh(reason)] = reasons.get(reason_zh(reason), 0) + n
            listed.append(
                {
                    "id": row.id,
                    "title": row.title,
                    "topic": topic_names.get(row.topic, "其他"),
                    "status": BROADCAST_STATUS_ZH.get(row.status, row.status),
                    "schedule": schedule_zh(row, zone, now),
                    "total": done.total,
                    "finished": done.finished,
                    "percent": int(100 * done.finished / done.total) if done.total else 0,
                    "counts": [
                        (label, done.by_status[status])
                        for status, label in STATUS_ZH.items()
                        if done.by_status.get(status)
                    ],
                    "unknown": done.by_status.get("unknown", 0),
                    "reasons": reasons,
                    "mass": mass,
                }
            )
    context = {
        "community": catalog.community_name,
        "user": user,
        "topics": [(t.id, t.name) for t in campaign.topics(catalog)],
        "grids": [(g.id, g.name) for g in catalog.document.community.grids],
        "broadcasts": listed,
        "unknown_means": UNKNOWN_MEANS_ZH,
        "draft": draft,
        "draft_times": [when_zh(t) for t in draft.times] if draft else [],
        "repeats": REPEATS,
        "weekdays": list(WEEKDAYS_ZH),
        "monthdays": list(range(1, 32)),
        "form": form or {},
        "problem": problem,
        "previewed": previewed,
        "quota": request.app[keys.SETTINGS].mass_send_quota,
    }
    return aiohttp_jinja2.render_template("broadcasts.html", request, context, status=status)


@routes.get("/console/broadcasts")
async def broadcasts(request: web.Request) -> web.Response:
    return await _page(request, require(request, *STAFF))


async def _prepare(request: web.Request, session: Any, form: dict[str, str], user: Any) -> Draft:
    """The form as a checked draft with its channel plan (raises BroadcastProblem)."""
    settings = request.app[keys.SETTINGS]
    return await prepare(
        session,
        catalog_of(request, user),
        topic=form["topic"],
        title=form["title"],
        text=form["text"],
        grid=form["grid"] or None,
        tag=form["tag"] or None,
        at=form["at"] or None,
        cron=form["cron"] or None,
        every=words_of(form),
        active_from=form["from"] or None,
        active_until=form["until"] or None,
        now=request.app[keys.CLOCK].now(),
        per_month=settings.mass_send_quota,
        batch_size=settings.mass_send_batch,
    )


@routes.post("/console/broadcasts")
async def compose(request: web.Request) -> web.Response:
    """Preview, or (with ``confirm``) schedule. Nothing is saved without the confirm step."""
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "").strip() for name in FIELDS}
    now = request.app[keys.CLOCK].now()
    confirmed = posted.get("confirm") == "yes"
    try:
        # Render only after this transaction ends: on SQLite a page's own reads would
        # otherwise wait for the write lock this transaction holds.
        async with request.app[keys.SESSIONMAKER].begin() as session:
            draft = await _prepare(request, session, form, user)
            if confirmed and await _just_scheduled(session, draft.row, now):
                raise web.HTTPFound("/console/broadcasts")  # a double click: once is enough
            if confirmed:
                session.add(draft.row)
                await session.flush()
                await audit(
                    session,
                    user.community_id,
                    user.username,
                    "broadcast",
                    str(draft.row.id),
                    f"{draft.row.title}（{draft.recipients} 位居民）",
                )
    except BroadcastProblem as exc:
        return await _page(request, user, form=form, problem=exc.for_staff, status=400)
    if not confirmed:
        return await _page(request, user, draft=draft, form=form)
    raise web.HTTPFound("/console/broadcasts")


@routes.post("/console/broadcasts/preview")
async def preview(request: web.Request) -> web.Response:
    """Send the draft, as followers will receive it, to one WeChat id (微信号) by
    WeChat's mass-send preview: staff see it on their own phone before confirming."""
    user = require(request, *STAFF)
    posted = await checked_form(request, user)
    form = {name: posted.get(name, "").strip() for name in FIELDS}
    wxname = posted.get("wxname", "").strip()
    try:
        async with request.app[keys.READER]() as session:
            draft = await _prepare(request, session, form, user)
    except BroadcastProblem as exc:
        return await _page(request, user, form=form, problem=exc.for_staff, status=400)
    if not wxname or len(wxname) > 64:
        problem = "请填写您的微信号（在微信“我”页面的最上方可以看到）。"
        return await _page(request, user, draft=draft, form=form, problem=problem, status=400)
    tenant = tenant_of(request, user)
    sender = tenant.customer_service
    if not isinstance(sender, MassSender):
        problem = "本系统没有接入公众号群发，无法预览。"
        return await _page(request, user, draft=draft, form=form, problem=problem, status=400)
    text = campaign_text(tenant.account, draft.row.title, draft.row.text, draft.row.topic)
    try:
        await sender.mass_preview(text, wxname=wxname)
    except WeChatError as exc:
        problem = (
            "没能发出预览：这个微信号没有关注本公众号，或者写错了。请核对后再试。"
            if exc.errcode in (40003, 40132, 43004)
            else "没能发出预览：微信暂时没有答复，请稍后再试。"
        )
        return await _page(request, user, draft=draft, form=form, problem=problem, status=400)
    return await _page(request, user, draft=draft, form=form, previewed=wxname)


async def _just_scheduled(session: Any, row: models.Broadcast, now: dt.datetime) -> bool:
    """The same notice confirmed in the last five minutes (a double click, a resent
    form) is not scheduled a second time."""
    found = await session.scalar(
        select(models.Broadcast.id).where(
            models.Broadcast.community_id == row.community_id,
            models.Broadcast.topic == row.topic,
            models.Broadcast.title == row.title,
            models.Broadcast.text == row.text,
            models.Broadcast.created_at > now - dt.timedelta(minutes=5),
        )
    )
    return found is not None
