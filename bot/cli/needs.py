"""``order-menu needs``: the unmet needs (需求清单) residents asked for that no item offers."""

from __future__ import annotations

import json
from typing import Any

import click

from bot.cli.common import (
    chosen_community,
    community_zone,
    database,
    local_time,
    run,
    settings_or_exit,
)


@click.group()
def needs() -> None:
    """Unmet needs (需求清单): what residents asked for that no item offers."""


@needs.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def needs_list(limit: int, as_json: bool) -> None:
    """List recorded unmet needs, newest first, with the items that came closest."""
    from storage.repositories.needs import list_unmet_needs

    settings = settings_or_exit()

    async def go() -> tuple[list[Any], str]:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            community_id = await chosen_community(session)
            if community_id is None:
                return [], ""
            found = await list_unmet_needs(session, community_id=community_id, limit=limit)
            return found, await community_zone(session, community_id)

    rows, zone = run(go(), settings)
    if not rows:
        click.echo("no unmet needs recorded")
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.as_json(), ensure_ascii=False))
        else:
            closest = f"  (closest: {', '.join(row.closest)})" if row.closest else ""
            click.echo(f"{local_time(row.created_at, zone)}  {row.text}{closest}")
