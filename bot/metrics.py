"""Prometheus metrics (``GET /metrics``): what an operator watches.

Counters and the latency histogram are updated as things happen; the figures that
live in the database (orders by status, outbox backlog, reminder lag, broadcast
deliveries) are read when Prometheus scrapes, so every process reports the shared
truth rather than its own slice.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from storage import models

REGISTRY = CollectorRegistry()
MESSAGES = Counter(
    "om_messages_total",
    "Inbound WeChat messages by type (events by event name)",
    ["kind"],
    registry=REGISTRY,
)
HANDLER_SECONDS = Histogram(
    "om_handler_seconds",
    "Time to handle a message (lock, state, handlers, ledger)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
    registry=REGISTRY,
)
WECHAT_ERRORS = Counter(
    "om_wechat_api_errors_total",
    "WeChat API errors by errcode (-1: unreachable or busy)",
    ["errcode"],
    registry=REGISTRY,
)
ORDERS = Gauge("om_orders", "Orders by status", ["status"], registry=REGISTRY)
OUTBOX = Gauge(
    "om_outbox", "Notifications by status (pending = backlog)", ["status"], registry=REGISTRY
)
REMINDER_LAG = Gauge(
    "om_reminder_lag_seconds", "How late the oldest due, unfired reminder is", registry=REGISTRY
)
BROADCAST = Gauge(
    "om_broadcast_deliveries", "Broadcast deliveries by status", ["status"], registry=REGISTRY
)

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app.add_routes(routes)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    from bot import keys  # here: bot.keys imports the webhook, which imports this module

    now = request.app[keys.CLOCK].now()
    async with request.app[keys.READER]() as session:
        for gauge, column in (
            (ORDERS, models.Order.status),
            (OUTBOX, models.OutboxMessage.status),
            (BROADCAST, models.BroadcastDelivery.status),
        ):
            gauge.clear()
            for status, count in await session.execute(
                select(column, func.count()).group_by(column)
            ):
                gauge.labels(status=status).set(count)
        oldest = await session.scalar(
            select(func.min(models.Reminder.due_at)).where(
                models.Reminder.status == "pending", models.Reminder.due_at <= now
            )
        )
    REMINDER_LAG.set((now - oldest).total_seconds() if oldest is not None else 0)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
