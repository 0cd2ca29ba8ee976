"""The application factory: one function builds the whole service for ``serve`` and tests."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

import handlers
from bot import keys, metrics
from bot.clock import Clock, SystemClock
from bot.communities import community_specs
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.jobs.broadcasts import BroadcastSender
from bot.jobs.digest import Digest
from bot.jobs.failures import SettingsCheck
from bot.jobs.leader import Leadership
from bot.jobs.outbox import OutboxWorker
from bot.jobs.queue import JobQueue
from bot.jobs.reminders import ReminderRunner
from bot.logs import request_ids
from bot.orders.effects import Policy
from bot.orders.waitlist import HoldRunner
from bot.pipeline.ledger import MessageLedger
from bot.pipeline.resident_locks import ResidentLocks
from bot.pipeline.state import DatabaseStateStorage
from bot.pipeline.webhook import Webhook
from bot.privacy.access import AccessLog
from bot.privacy.retention import INTERVAL as RETENTION_INTERVAL
from bot.privacy.retention import Periods, Retention
from bot.startup import prepare
from bot.tasks import BackgroundTasks
from bot.tenants import (
    Account,
    Accounts,
    Tenant,
    Tenants,
    UnknownCommunity,
    WeChatCredentials,
    refresh_catalogs,
)
from bot.web import (
    auth,
    broadcasts_admin,
    campaign_coverage,
    campaign_kit,
    catalog_admin,
    console,
    dev,
    erasure_admin,
    errors,
    learning,
    notices_admin,
    privacy_admin,
    public,
    simulator,
    visits_admin,
    wechat,
)
from bot.wechat.api import WeChatAPI
from bot.wechat.customer_service import CustomerService, DevOutbox
from bot.wechat.inbound import Codec
from catalog.live import LiveCatalog
from catalog.model import Catalog
from storage.batch import BatchDatabase
from storage.engine import create_engine, create_sessionmaker, read_only_engine

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The whole service. ``clock``: tests pass one they can move."""
    # Middlewares, outermost first: the request id (so every log line of the request
    # carries it, the error pages below included); then every failure turned into a
    # short Chinese page (errors.error_pages: 4xx refusals, the database's absence or
    # busyness as 503), around everything that may touch the database, the
    # signed-in lookup included; then that lookup (auth.setup appends
    # session_middleware).
    app = web.Application(middlewares=[request_ids, errors.error_pages])
    app[keys.SETTINGS] = settings
    app[keys.LINKS] = []
    app[keys.CLOCK] = clock or SystemClock()
    app[keys.POLICY] = Policy.from_settings(settings)
    # Contexts start in this order and stop in reverse: the database is up before
    # anything that uses it starts, and is closed only after they stopped.
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(webhook_context)
    app.cleanup_ctx.append(scheduler_context)
    app.cleanup_ctx.append(access_log_context)
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
    learning.setup(app)
    broadcasts_admin.setup(app)
    notices_admin.setup(app)
    privacy_admin.setup(app)
    visits_admin.setup(app)
    erasure_admin.setup(app)
    campaign_coverage.setup(app)
    campaign_kit.setup(app)
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
        startups = await prepare(engine, sessionmaker, community_specs(settings))
        app[keys.ENGINE] = engine
        app[keys.SESSIONMAKER] = sessionmaker
        app[keys.READER] = create_sessionmaker(read_only_engine(engine))
        app[keys.STARTUP] = [
            (
                startup,
                await LiveCatalog.load(startup.catalog, settings.thresholds, startup.learning),
            )
            for startup in startups
        ]
        yield
    finally:
        await engine.dispose()


async def webhook_context(app: web.Application) -> AsyncIterator[None]:
    """Each community's message pipeline and account; the tasks and batches they share."""
    settings = app[keys.SETTINGS]
    sessionmaker = app[keys.SESSIONMAKER]
    tasks = BackgroundTasks()
    batch_db = BatchDatabase.for_engine(app[keys.ENGINE])
    clock = app[keys.CLOCK]
    states = DatabaseStateStorage(
        batch_db, dt.timedelta(seconds=settings.conversation_timeout), clock=clock
    )
    dispatcher = Dispatcher(
        expired_notice=handlers.EXPIRED_NOTICE,
        noticed_states=handlers.BOOKING_STATES,
        first_routers=frozenset({"emergency"}),
    )
    dispatcher.include(*handlers.routers())
    ledgers: list[MessageLedger] = []
    resident_locks = ResidentLocks(app[keys.ENGINE])
    # One thread matches messages for every community: matching is pure-Python CPU
    # work that holds the GIL, so more threads would not match faster, only take
    # the GIL from the event loop more often.
    matching = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matching")
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        tenants = []
        for startup, live in app[keys.STARTUP]:
            spec, community_id = startup.spec, live.current.community_id
            customer_service: CustomerService
            if spec.wechat_app_id and spec.wechat_app_secret:
                customer_service = WeChatAPI(
                    app_id=spec.wechat_app_id,
                    app_secret=spec.wechat_app_secret,
                    base_url=settings.wechat_api_base,
                    sessionmaker=sessionmaker,
                    community_id=community_id,
                    http=http,
                )
            else:
                customer_service = DevOutbox()
            ledger = MessageLedger(
                batch_db,
                community_id,
                lease=settings.reply_deadline + 1.0,
                deferred_lease=settings.deferred_message_lease,
                clock=clock,
            )
            ledgers.append(ledger)
            token = startup.wechat_token
            tenants.append(
                Tenant(
                    spec=spec,
                    account=Account(
                        community_id, live, customer_service, spec.wechat_resident_template_id
                    ),
                    credentials=WeChatCredentials(token, startup.token_generated),
                    codec=Codec(
                        token, aes_key=spec.wechat_encoding_aes_key, app_id=spec.wechat_app_id
                    ),
                    webhook=Webhook(
                        community_id=community_id,
                        catalog=live,
                        sessionmaker=sessionmaker,
                        ledger=ledger,
                        states=states,
                        dispatcher=dispatcher,
                        tasks=tasks,
                        deadline=settings.reply_deadline,
                        policy=app[keys.POLICY],
                        clock=clock,
                        locks=resident_locks,
                        matching=matching,
                    ),
                )
            )
        app[keys.TASKS] = tasks
        app[keys.BATCH_DB] = batch_db
        app[keys.TENANTS] = Tenants(tenants)
        try:
            yield
        finally:
            # Stop taking work, let messages in flight finish, then flush batches.
            await tasks.close()
            for ledger in ledgers:
                await ledger.close()
            await states.close()
            await resident_locks.close()
            await batch_db.close()
            await asyncio.to_thread(matching.shutdown, cancel_futures=True)


async def rerun_deferred(tenants: Tenants) -> int:
    """Messages answered "success" whose run died or failed, in every community."""
    return sum([await tenant.webhook.rerun_deferred() for tenant in tenants])


SETTINGS_CHECK_INTERVAL = 60.0
"""Seconds between two looks for notifications whose missing setting is now set."""
DIGEST_INTERVAL = 60.0
"""Seconds between two looks at whether a community's daily digest is due."""


def _live_catalog(accounts: Accounts, community_id: str) -> Catalog | None:
    try:
        return accounts[community_id].catalog.current
    except UnknownCommunity:
        return None


async def access_log_context(app: web.Application) -> AsyncIterator[None]:
    """Records of views of residents' personal information, written behind the pages
    (``bot.privacy.access``); flushed when the service stops."""
    access_log = AccessLog(app[keys.SESSIONMAKER])
    app[keys.ACCESS_LOG] = access_log
    access_log.start()
    try:
        yield
    finally:
        await access_log.stop()


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    """Scheduled work (``bot.jobs``): reminders, the outbox, waiting-list holds,
    broadcasts, deferred messages and housekeeping, each a named job of the queue.

    One of each worker serves every community served here: rows carry their
    community, and the worker acts with that community's catalog and account.

    Where each job runs. Work whose claims are safe across processes runs in every
    process, so no community waits for one process (a leader that is slow, stuck or
    gone): reminders and waiting-list holds (``RowJob``: rows claimed with
    ``SKIP LOCKED`` in the transaction that acts on them), deferred messages (claims
    with an owner token on the database clock), and each process's own catalog
    refresh. The leader (``bot.jobs.leader``: one process per deployment, handed over in
    seconds) keeps only what must happen in one place:

    * the outbox: a recipient's messages go out in the order they were written (a
      unit reads "新订单" before its "催办"), one batch after the other. Claims are
      per row, so two processes would each take part of one recipient's backlog and
      send them side by side, out of order;
    * broadcasts: ``BROADCAST_RATE`` and the pause after WeChat's 45009 are one
      budget per official account, kept in memory by one sender; every process
      sending would multiply the rate WeChat sees;
    * the ledger's purge: one DELETE of old rows is enough; likewise the retention
      job (``bot.privacy.retention``): one sweep anonymises what is past its period;
    * putting back notifications whose missing setting is now set: the process that
      sends them is the one whose environment counts.
    """
    settings = app[keys.SETTINGS]
    sessionmaker = app[keys.SESSIONMAKER]
    tenants = app[keys.TENANTS]
    async with aiohttp.ClientSession() as http:
        worker = OutboxWorker(
            sessionmaker,
            accounts=tenants.accounts.__getitem__,
            communities=[t.id for t in tenants],
            http=http,
            clock=app[keys.CLOCK],
            max_attempts=settings.outbox_max_attempts,
            budget=settings.scheduler_interval,
        )
        runner = ReminderRunner(sessionmaker, tenants.accounts, app[keys.POLICY], app[keys.CLOCK])
        leadership = Leadership(
            app[keys.ENGINE], interval=settings.leader_interval, scope=[t.id for t in tenants]
        )
        await leadership.start()
        app[keys.LEADERSHIP] = leadership
        scheduler = JobQueue(gate=lambda: leadership.is_leader)
        scheduler.every(settings.scheduler_interval, "reminders", runner.run_once)
        scheduler.every(settings.scheduler_interval, "outbox", worker.run_once, leader_only=True)
        # Next to the outbox, in the process that sends it: rows that failed for want
        # of a setting are put back once this process has it (checked at start-up too).
        settings_check = SettingsCheck(
            sessionmaker, lambda: [t.id for t in tenants], app[keys.CLOCK]
        )
        scheduler.every(
            SETTINGS_CHECK_INTERVAL,
            "delivery-settings",
            settings_check.run_once,
            leader_only=True,
            at_start=True,
        )
        # In every process: the day's digest is claimed by its key, so it goes out once.
        digest = Digest(
            sessionmaker,
            lambda community: _live_catalog(tenants.accounts, community),
            lambda: [t.id for t in tenants],
            app[keys.POLICY],
            app[keys.CLOCK],
            settings.digest_at,
        )
        scheduler.every(DIGEST_INTERVAL, "daily-digest", digest.run_once)
        holds = HoldRunner(
            sessionmaker,
            lambda community: _live_catalog(tenants.accounts, community),
            app[keys.POLICY],
            app[keys.CLOCK],
            lambda: [t.id for t in tenants],
        )
        scheduler.every(settings.scheduler_interval, "waitlist", holds.run_once)
        sender = BroadcastSender(
            sessionmaker,
            tenants.accounts,
            app[keys.BATCH_DB],
            app[keys.POLICY],
            app[keys.CLOCK],
            rate=settings.broadcast_rate,
            budget=settings.scheduler_interval,
            lease=dt.timedelta(seconds=settings.broadcast_lease),
            mass_quota=settings.mass_send_quota,
            batch_size=settings.mass_send_batch,
        )
        scheduler.every(
            settings.scheduler_interval, "broadcasts", sender.run_once, leader_only=True
        )
        scheduler.every(
            settings.catalog_refresh_interval,
            "catalog-refresh",
            lambda: refresh_catalogs(sessionmaker, tenants.accounts),
        )
        scheduler.every(
            settings.scheduler_interval,
            "deferred-messages",
            lambda: rerun_deferred(tenants),
        )
        # The ledger's purge is not per community: one tenant's ledger does it for all.
        scheduler.every(
            3600, "ledger-purge", tenants.default.webhook.ledger.purge, leader_only=True
        )
        # Anonymising what is past its retention period: one sweep at a time is enough
        # (each step is idempotent, so a second process would only repeat the queries).
        retention = Retention(sessionmaker, app[keys.CLOCK], Periods.from_settings(settings))
        scheduler.every(RETENTION_INTERVAL, "retention", retention.run_once, leader_only=True)
        app[keys.SCHEDULER] = scheduler
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await leadership.stop()
