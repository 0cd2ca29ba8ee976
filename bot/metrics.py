"""Prometheus metrics (``GET /metrics``): what an operator watches.

Counters and the latency histogram are updated as things happen, in the process they
happen in. Under ``serve --workers N`` each scrape reaches one worker at random, so
they are kept in prometheus_client's multiprocess mode: the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a directory before anything imports the client,
every process (the supervisor too, for its restart count) writes its values to files
there, and whichever worker answers sums all of them: a scrape shows the whole
deployment, including what workers that have since died had counted. Without that
variable (a single process, the tests) they stay in memory as usual.

The figures that live in the database (orders by status, outbox backlog, reminder
lag, broadcast deliveries) are read when Prometheus scrapes, so every process
reports the shared truth rather than its own slice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
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
    "WeChat API errors by errcode (-1: busy, unreachable, or no clear answer to a call)",
    ["errcode"],
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "om_worker_restarts_total",
    "Workers of serve --workers N started again after one died (killed, crashed)",
    registry=REGISTRY,
)

STATUS_FIGURES = (
    (
        "om_orders",
        "Orders by status (confidential reports left out: only their unit may count them)",
        select(models.Order.status, func.count())
        .join(models.Item, models.Order.item_id == models.Item.id)
        .where(models.Item.confidential.is_(False))
        .group_by(models.Order.status),
    ),
    (
        "om_outbox",
        "Notifications by status (pending = backlog)",
        select(models.OutboxMessage.status, func.count()).group_by(models.OutboxMessage.status),
    ),
    (
        "om_broadcast_deliveries",
        "Broadcast deliveries by status",
        select(models.BroadcastDelivery.status, func.count()).group_by(
            models.BroadcastDelivery.status
        ),
    ),
)

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    app.add_routes(routes)


def multiprocess_directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_ended(pid: int) -> None:
    """The supervisor reaped ``pid``: drop what only a live process may report. Its
    counters stay, so that the deployment's totals never go down."""
    directory = multiprocess_directory()
    if directory is not None:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class _Figures(Collector):
    """Metric families read for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    from bot import keys  # here: bot.keys imports the webhook, which imports this module

    now = request.app[keys.CLOCK].now()
    families: list[Metric] = []
    async with request.app[keys.READER]() as session:
        for name, documentation, query in STATUS_FIGURES:
            family = GaugeMetricFamily(name, documentation, labels=["status"])
            for status, count in await session.execute(query):
                family.add_metric([status], count)
            families.append(family)
        oldest = await session.scalar(
            select(func.min(models.Reminder.due_at)).where(
                models.Reminder.status == "pending", models.Reminder.due_at <= now
            )
        )
    lag = (now - oldest).total_seconds() if oldest is not None else 0
    families.append(
        GaugeMetricFamily(
            "om_reminder_lag_seconds", "How late the oldest due, unfired reminder is", value=lag
        )
    )
    directory = multiprocess_directory()
    counted: Collector = REGISTRY
    if directory is not None:
        counted = MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]
    # Summing the processes' files reads them from disk: not on the event loop.
    body = await asyncio.to_thread(generate_latest, counted)
    body += generate_latest(_Figures(families))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
