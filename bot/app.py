"""The application factory: one function builds the whole service for ``serve`` and tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import keys
from bot.config import Settings
from bot.startup import prepare
from bot.web import public
from catalog.live import LiveCatalog
from storage.engine import create_engine, create_sessionmaker

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS] = settings
    app[keys.LINKS] = []
    # Contexts start in this order and stop in reverse: the database is up before
    # anything that uses it starts, and is closed only after they stopped.
    app.cleanup_ctx.append(database_context)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    public.setup(app)
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
