"""``order-menu residents``: a resident's grid and tags, by which broadcasts are targeted."""

from __future__ import annotations

import click

from bot.cli.common import community_catalog, database, fail, run, settings_or_exit


@click.group()
def residents() -> None:
    """Residents' grid and tags (for targeting broadcasts)."""


@residents.command("set")
@click.argument("openid")
@click.option("--grid", default=None, help="The resident's grid (网格) id.")
@click.option(
    "--building",
    default=None,
    help="Where they live (3栋2单元501): links them to their household for campaign coverage.",
)
@click.option("--add-tag", "add", multiple=True, help="Add a tag (repeatable).")
@click.option("--remove-tag", "remove", multiple=True, help="Remove a tag (repeatable).")
def residents_set(
    openid: str,
    grid: str | None,
    building: str | None,
    add: tuple[str, ...],
    remove: tuple[str, ...],
) -> None:
    """Set a resident's grid, building and tags (e.g. 独居老人, 有未成年子女)."""
    from storage.repositories import residents as repo

    settings = settings_or_exit()

    async def go() -> list[str]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            resident = await repo.find_resident(session, catalog.community_id, openid)
            if resident is None:
                raise click.ClickException(f"OPENID: no resident '{openid}'")
            if grid is not None:
                if grid not in {g.id for g in catalog.document.community.grids}:
                    raise click.ClickException(f"--grid: no grid '{grid}'")
                resident.grid_key = grid
            if building is not None:
                if not building.strip() or len(building) > 200:
                    raise click.ClickException(f"--building: '{building}' is not an address")
                resident.building = building.strip()
            tags = [t for t in resident.tags if t not in remove]
            tags += [t for t in add if t not in tags]
            resident.tags = tags
            return tags

    try:
        tags = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    click.echo(f"{openid}: tags {', '.join(tags) or '(none)'}" + (f", grid {grid}" if grid else ""))
