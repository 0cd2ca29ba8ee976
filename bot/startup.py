"""What happens before the service answers its first request.

Migrate the database, import the catalog file if it changed since it was last
imported, load the live catalog, and settle the WeChat token. Shared by ``serve`` and
the tests, so the tests start the service exactly as production does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from catalog.loader import demo_catalog_path, load_catalog
from catalog.model import Catalog
from storage import migrate
from storage.repositories.catalog import (
    ImportSummary,
    import_catalog,
    last_source_sha256,
    live_catalog,
)
from storage.repositories.instance import get_or_create

log = logging.getLogger(__name__)

DEV_TOKEN_KEY = "dev_wechat_token"


@dataclass(frozen=True)
class Startup:
    catalog: Catalog
    catalog_import: ImportSummary | None
    """What the start-up import changed; None when the file was already imported."""
    wechat_token: str
    token_generated: bool


def catalog_file(settings: Settings) -> Path:
    return settings.catalog_path or demo_catalog_path()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def prepare(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> Startup:
    """Raise ``CatalogError`` for a bad catalog file: the service must not start on one."""
    before, after = await migrate.upgrade(engine)
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)

    path = catalog_file(settings)
    # Reading and validating a file is blocking work: keep it off the event loop.
    catalog, sha = await asyncio.to_thread(lambda: (load_catalog(path), file_sha256(path)))

    summary = None
    async with sessionmaker.begin() as session:
        if await last_source_sha256(session, catalog.community_id) != sha:
            summary = await import_catalog(session, catalog, source=str(path), source_sha256=sha)
            log.info("%s", summary.describe())
        live = await live_catalog(session, catalog.community_id)
        token = settings.wechat_token or await get_or_create(
            session, DEV_TOKEN_KEY, lambda: secrets.token_urlsafe(24)
        )
    assert live is not None  # the import above guarantees a version exists
    return Startup(
        catalog=live,
        catalog_import=summary,
        wechat_token=token,
        token_generated=settings.wechat_token is None,
    )
