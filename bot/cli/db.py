"""``order-menu db``: database maintenance (migrations)."""

from __future__ import annotations

import click

from bot.cli.common import run, settings_or_exit
from storage import migrate
from storage.engine import create_engine


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations (serve also does this at start-up)."""
    settings = settings_or_exit()

    async def go() -> tuple[str | None, str | None]:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            return await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    before, after = run(go(), settings)
    if before == after:
        click.echo(f"database is current (revision {after})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after}")
