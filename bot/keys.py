"""Typed keys for what the application shares between its parts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.leader import Leadership
from bot.order_effects import Policy
from bot.scheduler import Scheduler
from bot.tasks import BackgroundTasks
from bot.webhook import CustomerService, Webhook
from bot.wechat.inbound import Codec
from catalog.live import LiveCatalog
from storage.batch import BatchDatabase


@dataclass(frozen=True)
class Link:
    """A page a newcomer can open: listed on ``/`` and printed by ``serve``."""

    path: str
    title: str
    description: str


@dataclass(frozen=True)
class WeChatCredentials:
    token: str
    token_generated: bool
    """True when no WECHAT_TOKEN was configured and a development token is in use."""


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
CATALOG = web.AppKey("catalog", LiveCatalog)
CREDENTIALS = web.AppKey("credentials", WeChatCredentials)
LINKS = web.AppKey("links", list[Link])
TASKS = web.AppKey("tasks", BackgroundTasks)
CODEC = web.AppKey("codec", Codec)
WEBHOOK = web.AppKey("webhook", Webhook)
CUSTOMER_SERVICE = web.AppKey("customer_service", CustomerService)
"""Where late replies go: the WeChat API client, or a DevOutbox without credentials."""
CLOCK = web.AppKey("clock", Clock)
POLICY = web.AppKey("policy", Policy)
SCHEDULER = web.AppKey("scheduler", Scheduler)
BATCH_DB = web.AppKey("batch_db", BatchDatabase)
"""Runs batches and single-row claims the cheapest way for the backend (storage.batch)."""
LEADERSHIP = web.AppKey("leadership", Leadership)
