"""The application factory: one function builds the whole service for ``serve`` and tests."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

import handlers
from bot import keys
from bot.config import Settings
from bot.dispatch import Dispatcher
from bot.ledger import MessageLedger
from bot.startup import prepare
from bot.state import DatabaseStateStorage
from bot.tasks import BackgroundTasks
from bot.web import dev, public, wechat
from bot.webhook import CustomerService, DevOutbox, Webhook
from bot.wechat.api import WeChatAPI
from bot.wechat.inbound import Codec
from catalog.live import LiveCatalog
from storage.batch import BatchDatabase
from storage.engine import create_engine, create_sessionmaker

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS] = settings
    app[keys.LINKS] = []
    # Contexts start in this order and stop in reverse: the database is up before
    # anything that uses it starts, and is closed only after they stopped.
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(webhook_context)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    public.setup(app)
    wechat.setup(app)
    dev.setup(app)
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
    ledger = MessageLedger(batch_db, community_id, lease=settings.reply_deadline + 1.0)
    states = DatabaseStateStorage(batch_db, dt.timedelta(seconds=settings.conversation_timeout))
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
        )
        tasks.spawn(_purge_ledger(ledger), name="ledger purge", loop=True)
        try:
            yield
        finally:
            # Stop taking work, let messages in flight finish, then flush batches.
            await tasks.close()
            await ledger.close()
            await states.close()
            await batch_db.close()


async def _purge_ledger(ledger: MessageLedger, every: float = 3600.0) -> None:
    """Forget processed messages older than a day, hourly (until the scheduler owns it)."""
    while True:
        try:
            purged = await ledger.purge()
            if purged:
                log.info("forgot %d processed messages older than a day", purged)
        except Exception:
            log.warning("purging processed messages failed; will retry", exc_info=True)
        await asyncio.sleep(every)
