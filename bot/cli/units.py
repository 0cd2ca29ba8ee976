"""``order-menu units``: partner units; invite codes with which members bind their WeChat."""

from __future__ import annotations

import datetime as dt

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


@click.group()
def units() -> None:
    """Partner units and their members."""


@units.command("invite")
@click.argument("unit_key", metavar="UNIT")
@invite_options
def units_invite(unit_key: str, hours: float, staff: str) -> None:
    """Print a one-time code with which a member of UNIT binds their WeChat."""
    from storage.repositories.units import create_invite, unit_row

    settings = settings_or_exit()

    async def go() -> tuple[str, dt.datetime, str, str]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            unit = await unit_row(session, catalog.community_id, unit_key)
            if unit is None:
                known = ", ".join(u.id for u in catalog.units)
                raise click.ClickException(f"UNIT: no unit '{unit_key}' (units: {known})")
            code, expires = await create_invite(
                session, unit, ttl=dt.timedelta(hours=hours), created_by=staff
            )
            return code, expires, unit.name, catalog.document.community.timezone

    try:
        code, expires, unit_name, zone = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    print_invite(code, expires, zone, f"for {unit_name}", "The member")
