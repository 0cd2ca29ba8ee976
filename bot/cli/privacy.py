"""``order-menu privacy``: personal information past its retention period."""

from __future__ import annotations

import click

from bot.cli.common import database, run, settings_or_exit


@click.group()
def privacy() -> None:
    """Personal information: retention (see RETAIN_*_DAYS in the README)."""


@privacy.command("retention")
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
def retention(dry_run: bool) -> None:
    """Anonymise what is past its retention period now, in every community, and
    print how many rows of each kind (the service's hourly job does the same)."""
    from bot.clock import SystemClock
    from bot.privacy.retention import Periods, Retention

    settings = settings_or_exit()

    async def go() -> dict[str, int]:
        async with database(settings) as (_, sessionmaker):
            job = Retention(sessionmaker, SystemClock(), Periods.from_settings(settings))
            return await job.run_once(dry_run=dry_run)

    counts = run(go(), settings)
    verb = "due" if dry_run else "anonymised"
    for kind, n in counts.items():
        click.echo(f"{kind}: {n} {verb}")
