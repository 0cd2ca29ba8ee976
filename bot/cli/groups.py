"""``order-menu groups``: the community's WeChat groups (楼栋群) where campaign posters go.

The same list staff keep on the console's 楼栋群 page; this is for setting up many
groups at once from a script.
"""

from __future__ import annotations

import re

import click

from bot.cli.common import community_catalog, database, fail, run, settings_or_exit

LONGEST_NAME = 50
LONGEST_BUILDING = 20


@click.group()
def groups() -> None:
    """WeChat groups of residents (楼栋群) and the buildings each covers."""


@groups.command("add")
@click.argument("name")
@click.option("--grid", default=None, help="The group's grid (网格) id.")
@click.option(
    "--buildings", required=True, help="Buildings it covers, comma-separated (e.g. 3栋,4栋)."
)
def groups_add(name: str, grid: str | None, buildings: str) -> None:
    """Add a group (e.g. 解东小区3栋住户群)."""
    from storage.repositories import groups as repo

    name = " ".join(name.split())
    covered = list(dict.fromkeys(b for b in re.split(r"[，,、；;\s]+", buildings) if b))
    if not name or len(name) > LONGEST_NAME:
        fail(f"NAME: '{name}' must be 1 to {LONGEST_NAME} characters")
    if not covered:
        fail(f"--buildings: '{buildings}' names no building; expected e.g. 3栋,4栋")
    too_long = [b for b in covered if len(b) > LONGEST_BUILDING]
    if too_long:
        fail(f"--buildings: '{too_long[0]}' is longer than {LONGEST_BUILDING} characters")
    settings = settings_or_exit()

    async def go() -> int:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            grids = {g.id for g in catalog.document.community.grids}
            if grid is None and grids:
                raise click.ClickException(f"--grid: required; one of {', '.join(sorted(grids))}")
            if grid is not None and grid not in grids:
                raise click.ClickException(f"--grid: no grid '{grid}'")
            if await repo.group_named(session, catalog.community_id, name) is not None:
                raise click.ClickException(f"NAME: a group '{name}' exists already")
            row = await repo.add_group(session, catalog.community_id, name, grid, covered)
            return row.id

    try:
        number = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    click.echo(f"added: group {number} '{name}' ({', '.join(covered)})")


@groups.command("list")
def groups_list() -> None:
    """The groups, by grid: id, name, buildings, and whether in use."""
    from storage.repositories import groups as repo

    settings = settings_or_exit()

    async def go() -> list[str]:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            catalog = await community_catalog(session)
            rows = await repo.groups(session, catalog.community_id)
            return [
                f"{g.id}\t{g.grid_key or '-'}\t{g.name}\t{','.join(g.buildings or [])}"
                + ("" if g.active else "\t(not in use)")
                for g in rows
            ]

    for line in run(go(), settings) or ["(no groups)"]:
        click.echo(line)
