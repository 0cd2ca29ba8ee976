"""Typed keys for what the application shares between its parts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from catalog.live import LiveCatalog


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
