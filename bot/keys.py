"""Typed keys for what the application shares between its parts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.jobs.leader import Leadership
from bot.jobs.queue import JobQueue
from bot.orders.effects import Policy
from bot.privacy.access import AccessLog
from bot.startup import Startup
from bot.tasks import BackgroundTasks
from bot.tenants import Tenants
from catalog.live import LiveCatalog
from storage.batch import BatchDatabase


@dataclass(frozen=True)
class Link:
    """A page a newcomer can open: listed on ``/`` and printed by ``serve``.

    The front page is read by residents, staff and whoever sets the service up, so
    it says everything in Chinese (``title``, ``description``); the ``serve`` banner
    is the operator's, who gets the English ``name`` beside the title.
    """

    path: str
    title: str
    description: str
    name: str

    @property
    def banner(self) -> str:
        """The title as the operator's banner shows it, with the English name."""
        return f"{self.title} {self.name}"


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
"""Sessions for work that writes: on SQLite each one takes the write lock up front."""
READER = web.AppKey("reader", async_sessionmaker[AsyncSession])
"""Sessions for work that only reads (every GET page, the signed-in lookup, metrics):
the same pool, but on SQLite no write lock, so they are answered while a writer
holds it (storage.engine.read_only_engine)."""
STARTUP = web.AppKey("startup", list[tuple[Startup, LiveCatalog]])
"""Each community as prepared at start-up, with its live catalog."""
TENANTS = web.AppKey("tenants", Tenants)
"""Every community served: catalog, account, codec and pipeline (bot.tenants)."""
LINKS = web.AppKey("links", list[Link])
TASKS = web.AppKey("tasks", BackgroundTasks)
CLOCK = web.AppKey("clock", Clock)
POLICY = web.AppKey("policy", Policy)
SCHEDULER = web.AppKey("scheduler", JobQueue)
BATCH_DB = web.AppKey("batch_db", BatchDatabase)
"""Runs batches and single-row claims the cheapest way for the backend (storage.batch)."""
LEADERSHIP = web.AppKey("leadership", Leadership)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
"""Records of views of residents' personal information, written behind the page."""
