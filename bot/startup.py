"""What happens before the service answers its first request.

Migrate the database; then for each community, import its catalog file if it changed
since it was last imported, load its live catalog, and settle its WeChat token.
Shared by ``serve`` and the tests, so the tests start the service exactly as
production does.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.communities import CommunitySpec, community_specs
from bot.config import ConfigError, Settings
from catalog.learned import NOTHING_LEARNED, Learning, with_learned
from catalog.loader import demo_catalog_path, load_catalog
from catalog.model import Catalog
from storage import migrate
from storage.engine import create_engine, create_sessionmaker
from storage.repositories.catalog import (
    ImportSummary,
    import_catalog,
    last_source_sha256,
    live_catalog,
)
from storage.repositories.inbox import learning_of
from storage.repositories.instance import get_or_create

log = logging.getLogger(__name__)

DEV_TOKEN_KEY = "dev_wechat_token"


@dataclass(frozen=True)
class Startup:
    """One community, ready to serve."""

    spec: CommunitySpec
    catalog: Catalog
    catalog_import: ImportSummary | None
    """What the start-up import changed; None when the file was already imported."""
    wechat_token: str
    token_generated: bool
    learning: Learning = NOTHING_LEARNED
    """What staff taught in the learning inbox, applied on top of ``catalog``."""


def catalog_file(settings: Settings) -> Path:
    return settings.catalog_path or demo_catalog_path()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_catalog(path: Path) -> tuple[Catalog, str]:
    """The catalog in ``path`` and the file's SHA-256; blocking.

    Parsing and validating the demo catalog takes ~0.2 s; a file's content parses to
    the same catalog every time, so it is done once per content per process, and a
    worker forked by ``serve --workers N`` gets the supervisor's at no cost."""
    sha = file_sha256(path)
    return _parsed(str(path), sha), sha


@functools.lru_cache(maxsize=16)
def _parsed(path: str, sha256: str) -> Catalog:
    return load_catalog(path)


async def preload(settings: Settings) -> None:
    """Do the start-up work that a worker of ``serve --workers N`` need not repeat,
    in the supervisor before it forks them: migrate, import every catalog that
    changed, parse the catalog files, load jieba's dictionary and build each live
    catalog's matcher. The workers inherit the caches, and their own start-up then
    only checks (the migrations are current, the files already imported). Raises
    what :func:`prepare` raises, so a broken catalog stops the deployment before any
    worker is started, with the same report as a single process."""
    from catalog.live import matcher_for

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        startups = await prepare(engine, create_sessionmaker(engine), community_specs(settings))
    finally:
        await engine.dispose()
    for startup in startups:
        current = with_learned(startup.catalog, startup.learning)
        await asyncio.to_thread(matcher_for, current, settings.thresholds)


async def prepare(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    specs: list[CommunitySpec],
) -> list[Startup]:
    """Every community, in the order given. Raise ``CatalogError`` for a bad catalog
    file and ``ConfigError`` for a catalog of another community than its entry says:
    the service must not start on either."""
    before, after = await migrate.upgrade(engine)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return [await _prepare_one(sessionmaker, spec) for spec in specs]


def dev_token_key(spec: CommunitySpec, community_id: str) -> str:
    """Where a community's generated development token is kept: the zero-config
    community keeps the key it always had; listed ones are keyed by id (reordering
    the file must not swap their tokens)."""
    return DEV_TOKEN_KEY if spec.id is None else f"{DEV_TOKEN_KEY}:{community_id}"


async def _prepare_one(
    sessionmaker: async_sessionmaker[AsyncSession], spec: CommunitySpec
) -> Startup:
    path = spec.catalog_path or demo_catalog_path()
    # Reading and validating a file is blocking work: keep it off the event loop.
    catalog, sha = await asyncio.to_thread(read_catalog, path)
    if spec.id is not None and catalog.community_id != spec.id:
        raise ConfigError(
            f"community {spec.id!r}: its catalog {path} is for community "
            f"{catalog.community_id!r} (community.id in the file)"
        )
    token_key = dev_token_key(spec, catalog.community_id)
    summary = None
    async with sessionmaker.begin() as session:
        if await last_source_sha256(session, catalog.community_id) != sha:
            summary = await import_catalog(session, catalog, source=str(path), source_sha256=sha)
            log.info("%s", summary.describe())
        live = await live_catalog(session, catalog.community_id)
        learning = await learning_of(session, catalog.community_id)
        token = spec.wechat_token or await get_or_create(
            session, token_key, lambda: secrets.token_urlsafe(24)
        )
    assert live is not None  # the import above guarantees a version exists
    return Startup(
        spec=spec,
        catalog=live,
        catalog_import=summary,
        wechat_token=token,
        token_generated=spec.wechat_token is None,
        learning=learning,
    )
