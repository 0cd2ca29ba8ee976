"""The application factory: one function builds the whole service for ``serve`` and tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

import handlers
from bot import keys, metrics
from bot.broadcasts import BroadcastSender
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.leader import Leadership
from bot.ledger import MessageLedger
from bot.logs import request_ids
from bot.order_effects import Policy
from bot.outbox import OutboxWorker
from bot.reminders import ReminderRunner
from bot.scheduler import Scheduler
from bot.startup import prepare
from bot.state import DatabaseStateStorage
from bot.tasks import BackgroundTasks
from bot.web import (
    auth,
    broadcasts_admin,
    catalog_admin,
    console,
    dev,
    public,
    simulator,
    wechat,
)
from bot.webhook import CustomerService, DevOutbox, Webhook
from bot.wechat.api import WeChatAPI
from bot.wechat.inbound import Codec
from catalog.live import LiveCatalog
from storage.batch import BatchDatabase
from storage.engine import create_engine, create_sessionmaker

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The whole service. ``clock``: tests pass one they can move."""
    app = web.Application(middlewares=[request_ids])
    app[keys.SETTINGS] = settings
    app[keys.LINKS] = []
    app[keys.CLOCK] = clock or SystemClock()
    app[keys.POLICY] = Policy.from_settings(settings)
    # Contexts start in this order and stop in reverse: the database is up before
    # anything that uses it starts, and is closed only after they stopped.
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(webhook_context)
    app.cleanup_ctx.append(scheduler_context)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    public.setup(app)
    wechat.setup(app)
    dev.setup(app)
    auth.setup(app)
    console.setup(app)
    catalog_admin.setup(app)
    broadcasts_admin.setup(app)
    simulator.setup(app)
    metrics.setup(app)
    return app


async def database_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
    )
    try:
        sessionmaker = create_sessionmaker(engine)
        startup = await prepare(engine, sessionmaker, settings)
        app[keys.ENGINE] = engine
        app[keys.SESSIONMAKER] = sessionmaker
        app[keys.CATALOG] = await LiveCatalog.load(startup.catalog, settings.thresholds)
        app[keys.CREDENTIALS] = keys.WeChatCredentials(
            token=startup.wechat_token, token_generated=startup.token_generated
        )
        yield
    finally:
        await engine.dispose()


async def webhook_context(app: web.Application) -> AsyncIterator[None]:
    """The message pipeline, its background tasks, and the outbound WeChat client."""
    settings = app[keys.SETTINGS]
    sessionmaker = app[keys.SESSIONMAKER]
    live = app[keys.CATALOG]
    community_id = live.current.community_id
    tasks = BackgroundTasks()
    batch_db = BatchDatabase.for_engine(app[keys.ENGINE])
    clock = app[keys.CLOCK]
    ledger = MessageLedger(batch_db, community_id, lease=settings.reply_deadline + 1.0, clock=clock)
    states = DatabaseStateStorage(
        batch_db, dt.timedelta(seconds=settings.conversation_timeout), clock=clock
    )
    dispatcher = Dispatcher(expired_notice=handlers.EXPIRED_NOTICE)
    dispatcher.include(*handlers.routers())
    async with contextlib.AsyncExitStack() as stack:
        customer_service: CustomerService
        if settings.wechat_app_id and settings.wechat_app_secret:
            http = await stack.enter_async_context(aiohttp.ClientSession())
            customer_service = WeChatAPI(
                app_id=settings.wechat_app_id,
                app_secret=settings.wechat_app_secret,
                base_url=settings.wechat_api_base,
                sessionmaker=sessionmaker,
                community_id=community_id,
                http=http,
            )
        else:
            customer_service = DevOutbox()
        app[keys.TASKS] = tasks
        app[keys.BATCH_DB] = batch_db
        app[keys.CUSTOMER_SERVICE] = customer_service
        app[keys.CODEC] = Codec(
            app[keys.CREDENTIALS].token,
            aes_key=settings.wechat_encoding_aes_key,
            app_id=settings.wechat_app_id,
        )
        app[keys.WEBHOOK] = Webhook(
            community_id=community_id,
            catalog=live,
            sessionmaker=sessionmaker,
            ledger=ledger,
            states=states,
            dispatcher=dispatcher,
            customer_service=customer_service,
            tasks=tasks,
            deadline=settings.reply_deadline,
            policy=app[keys.POLICY],
            clock=app[keys.CLOCK],
        )
        try:
            yield
        finally:
            # Stop taking work, let messages in flight finish, then flush batches.
            await tasks.close()
            await ledger.close()
            await states.close()
            await batch_db.close()


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    """Reminders, the outbox and housekeeping, polled by APScheduler interval jobs."""
    settings = app[keys.SETTINGS]
    sessionmaker = app[keys.SESSIONMAKER]
    async with aiohttp.ClientSession() as http:
        worker = OutboxWorker(
            sessionmaker,
            customer_service=app[keys.CUSTOMER_SERVICE],
            http=http,
            clock=app[keys.CLOCK],
            max_attempts=settings.outbox_max_attempts,
            resident_template=settings.wechat_resident_template_id,
        )
        runner = ReminderRunner(sessionmaker, app[keys.CATALOG], app[keys.POLICY], app[keys.CLOCK])
        leadership = Leadership(app[keys.ENGINE], interval=settings.leader_interval)
        await leadership.start()
        app[keys.LEADERSHIP] = leadership
        scheduler = Scheduler(gate=lambda: leadership.is_leader)
        scheduler.every(settings.scheduler_interval, "reminders", runner.run_once)
        scheduler.every(settings.scheduler_interval, "outbox", worker.run_once)
        live = app[keys.CATALOG]
        sender = BroadcastSender(
            sessionmaker,
            lambda: live.current,
            app[keys.BATCH_DB],
            app[keys.POLICY],
            app[keys.CUSTOMER_SERVICE],
            app[keys.CLOCK],
            rate=settings.broadcast_rate,
            template=settings.wechat_resident_template_id,
            budget=settings.scheduler_interval,
            lease=dt.timedelta(seconds=settings.broadcast_lease),
        )
        scheduler.every(settings.scheduler_interval, "broadcasts", sender.run_once)
        scheduler.every(3600, "ledger-purge", app[keys.WEBHOOK].ledger.purge)
        app[keys.SCHEDULER] = scheduler
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await leadership.stop()
