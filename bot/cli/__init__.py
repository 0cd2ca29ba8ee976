"""The ``order-menu`` command line.

User mistakes (a bad setting, a broken catalog, an unknown status, an unreachable
database) end with one clear line on stderr and a non-zero exit status, never a
traceback. Exit status 1: the input is wrong; 2: usage or configuration is wrong.

Each command group is a module of this package (serve, chat, db, catalog, match,
needs, orders, units, broadcast, residents, users, menu, groups, privacy; households holds
households and grid), added to the root group ``main`` below; what they share (fail,
run, database, the chosen community) is in bot/cli/common.py.
"""

from __future__ import annotations

import click

from bot.cli import (
    broadcast,
    catalog,
    chat,
    db,
    groups,
    households,
    match,
    menu,
    needs,
    orders,
    privacy,
    residents,
    serve,
    units,
    users,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-menu")
@click.option(
    "--community",
    envvar="ORDER_MENU_COMMUNITY",
    default=None,
    help="Which community (its catalog id); needed when the database serves several.",
)
@click.pass_context
def main(ctx: click.Context, community: str | None) -> None:
    """order-menu: the community service bot (群众点单 → 社区派单 → 单位接单 → 群众评单).

    Settings come from environment variables or a .env file; see the README.
    """
    ctx.obj = community


main.add_command(serve.serve)
main.add_command(chat.chat)
main.add_command(db.db)
main.add_command(catalog.catalog)
main.add_command(match.match)
main.add_command(needs.needs)
main.add_command(orders.orders)
main.add_command(units.units)
main.add_command(broadcast.broadcast)
main.add_command(residents.residents)
main.add_command(users.users)
main.add_command(menu.menu)
main.add_command(households.households)
main.add_command(households.grid)
main.add_command(groups.groups)
main.add_command(privacy.privacy)
