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
from bot.startup import Startup
from bot.tasks import BackgroundTasks
from bot.tenants import Tenants
from catalog.live import LiveCatalog
from storage.batch import BatchDatabase


@dataclass(frozen=True)
class Link:
    """A page a newcomer can open: listed on ``/`` and printed by ``serve``."""

    path: str
    title: str
    description: str


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
STARTUP = web.AppKey("startup", list[tuple[Startup, LiveCatalog]])
"""Each community as prepared at start-up, with its live catalog."""
TENANTS = web.AppKey("tenants", Tenants)
"""Every community served: catalog, account, codec and pipeline (bot.tenants)."""
LINKS = web.AppKey("links", list[Link])
TASKS = web.AppKey("tasks", BackgroundTasks)
CLOCK = web.AppKey("clock", Clock)
POLICY = web.AppKey("policy", Policy)
SCHEDULER = web.AppKey("scheduler", Scheduler)
BATCH_DB = web.AppKey("batch_db", BatchDatabase)
"""Runs batches and single-row claims the cheapest way for the backend (storage.batch)."""
LEADERSHIP = web.AppKey("leadership", Leadership)
