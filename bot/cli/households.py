"""``order-menu households`` and ``order-menu grid``: the grids' household lists for
door-to-door visits (下户走访), and invite codes with which grid workers (网格员)
bind their WeChat to a grid."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import click

from bot.cli.common import (
    community_catalog,
    database,
    fail,
    invite_options,
    print_invite,
    run,
    settings_or_exit,
)

COMMUNITY = click.option(
    "--community",
    default=None,
    help="Which community (its catalog id); the same as the root option.",
)


def _choose(community: str | None) -> None:
    """``--community`` given after the command stands for the root option."""
    if community is not None:
        click.get_current_context().find_root().obj = community


@click.group()
def households() -> None:
    """Households of the grids (imported from each grid's list)."""


@households.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@COMMUNITY
@click.option(
    "--retire-missing",
    is_flag=True,
    help="Retire households of the file's grids that the file no longer lists.",
)
def households_import(file: Path, community: str | None, retire_missing: bool) -> None:
    """Import a household list (CSV, UTF-8 or GBK): columns 网格/grid, 楼栋/building,
    单元/unit, 房号/room, 备注/notes (and optionally 独居老人/elderly). The whole file
    is checked first; a household already imported (same address) is updated."""
    from catalog.household_lists import read_list
    from storage.repositories.households import ImportCounts, import_rows
    from storage.types import utcnow

    _choose(community)
    settings = settings_or_exit()
    data = file.read_bytes()

    async def go() -> tuple[ImportCounts, int] | list[str]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            grids = catalog.document.community.grids
            read = await asyncio.to_thread(read_list, data, grids)
            if read.problems:
                return [p.english() for p in read.problems]
            counts = await import_rows(
                session,
                catalog.community_id,
                read.rows,
                now=utcnow(),
                retire_missing=retire_missing,
            )
            return counts, len(read.rows)

    try:
        result = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    if isinstance(result, list):
        for line in result:
            click.echo(f"{file.name}: {line}", err=True)
        fail(f"{file.name}: {len(result)} problem(s); nothing was imported")
    counts, rows = result
    retired = f", {counts.retired} retired" if retire_missing else ""
    click.echo(
        f"Imported {rows} households from {file.name}: {counts.added} added, "
        f"{counts.updated} updated, {counts.unchanged} unchanged{retired}."
    )


@click.group()
def grid() -> None:
    """Grids (网格) and their grid workers (网格员)."""


@grid.command("invite")
@click.option("--grid", "grid_key", required=True, help="The grid's id in the catalog.")
@COMMUNITY
@invite_options
def grid_invite(grid_key: str, community: str | None, hours: float, staff: str) -> None:
    """Print a one-time code with which a grid worker of GRID binds their WeChat."""
    from storage.repositories.units import create_grid_invite

    _choose(community)
    settings = settings_or_exit()

    async def go() -> tuple[str, dt.datetime, str, str]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            grids = {g.id: g.name for g in catalog.document.community.grids}
            if grid_key not in grids:
                known = ", ".join(grids) or "-"
                raise click.ClickException(f"--grid: no grid '{grid_key}' (grids: {known})")
            code, expires = await create_grid_invite(
                session,
                catalog.community_id,
                grid_key,
                ttl=dt.timedelta(hours=hours),
                created_by=staff,
            )
            return code, expires, grids[grid_key], catalog.document.community.timezone

    try:
        code, expires, grid_name, zone = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    print_invite(code, expires, zone, f"for a grid worker of {grid_name}", "The grid worker")
