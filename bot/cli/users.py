"""``order-menu users``: the people who log in to the web side."""

from __future__ import annotations

import re

import click

from bot.cli.common import community_catalog, database, fail, run, settings_or_exit


@click.group()
def users() -> None:
    """People who log in to the web side."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "staff", "unit"]), required=True)
@click.option("--unit", "unit_key", default=None, help="The unit (required for --role unit).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, role: str, unit_key: str | None, password_stdin: bool) -> None:
    """Create a web user (the password is asked for, or read with --password-stdin)."""
    import sys

    from bot.web.auth import hash_password
    from storage import models
    from storage.repositories.units import unit_row
    from storage.repositories.users import find_user

    if role == "unit" and not unit_key:
        fail("--unit: required with --role unit", 2)
    if role != "unit" and unit_key:
        fail("--unit: only with --role unit", 2)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{2,64}", username):
        fail(f"USERNAME: '{username}': 2-64 letters, digits, '.', '_' or '-'", 2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        fail("password: at least 10 characters", 2)
    settings = settings_or_exit()

    async def go() -> str:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            if await find_user(session, catalog.community_id, username) is not None:
                raise click.ClickException(f"USERNAME: '{username}' exists already")
            unit_id = None
            if unit_key:
                unit = await unit_row(session, catalog.community_id, unit_key)
                if unit is None:
                    known = ", ".join(u.id for u in catalog.units)
                    raise click.ClickException(f"--unit: no unit '{unit_key}' (units: {known})")
                unit_id = unit.id
            session.add(
                models.User(
                    community_id=catalog.community_id,
                    username=username,
                    password_hash=await hash_password(password),
                    role=role,
                    unit_id=unit_id,
                )
            )
            return str(catalog.community_name)

    try:
        community = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    click.echo(
        f"created {role} '{username}' for {community}" + (f" ({unit_key})" if unit_key else "")
    )
