"""What the command modules of bot/cli/ share.

Failing with one ``error:`` line and an exit status (1: the input is wrong; 2: usage or
configuration is wrong), reading the settings, running a coroutine against a database
that is migrated to head, and knowing which community a command is for (``--community``,
kept on the root context by ``main``), its catalog and its time zone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import ConfigError, Settings, load_settings
from catalog.loader import CatalogError, load_catalog
from catalog.model import Catalog
from storage import migrate
from storage.engine import create_engine, create_sessionmaker

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class DatabaseNotReady(Exception):
    """The database is not set up or not migrated to head; run() reports it in one line."""


def fail(message: str, status: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``status``."""
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(status)


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings, or exit 2 naming what is wrong with them."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", 2)
        raise  # unreachable; keeps type checkers content


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): its network I/O runs in C, which
    made the webhook ~15% faster in bench/webhook_load.py. Else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run a coroutine, turning database trouble into one readable line."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(coro)
    except DatabaseNotReady as exc:
        fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        fail(f"cannot use the database {settings.database_display()}: {reason}")
    raise AssertionError("unreachable")


@asynccontextmanager
async def database(
    settings: Settings, *, migrate_first: bool = False
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """An engine and sessionmaker for one command, disposed after it; raises
    DatabaseNotReady unless the database is at the head revision (or migrates it
    first with ``migrate_first``)."""
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        if migrate_first:
            await migrate.upgrade(engine)
        else:
            current = await migrate.current_revision(engine)
            if current != migrate.head_revision():
                raise DatabaseNotReady(
                    f"the database {settings.database_display()} is "
                    f"{'not set up' if current is None else 'out of date'}: "
                    "run `order-menu db upgrade` first"
                )
        yield engine, create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def chosen_community(session: AsyncSession) -> str | None:
    """The community the command is for: ``--community``; else, without
    COMMUNITIES_FILE, the one whose catalog was imported last (a single-community
    set-up that moved from the demo to its own catalog); else the only one in the
    database. None when no catalog was imported yet; a ClickException when the
    choice is missing or unknown."""
    from storage.repositories.catalog import community_ids, live_catalog

    chosen: str | None = click.get_current_context().find_root().obj
    known = await community_ids(session)
    if chosen is None and len(known) > 1:
        if settings_or_exit().communities_file is None:
            newest = await live_catalog(session)
            assert newest is not None
            return newest.community_id
        raise click.ClickException(
            f"this database serves several communities ({', '.join(known)}): "
            "choose one with --community"
        )
    if chosen is not None and chosen not in known:
        raise click.ClickException(
            f"--community: no community '{chosen}' here (communities: {', '.join(known) or '-'})"
        )
    return chosen or (known[0] if known else None)


def local_time(moment: dt.datetime, zone: str) -> str:
    """A stored (UTC) time as people of the community read it: in its time zone
    (the catalog's ``community.timezone``), as the README promises. JSON output
    keeps ISO 8601 with the offset instead."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


async def community_zone(session: AsyncSession, community_id: str) -> str:
    """The community's time zone, as its last imported catalog set it."""
    from storage import models

    community = await session.get(models.Community, community_id)
    return community.timezone if community is not None else "Asia/Shanghai"


async def community_catalog(session: AsyncSession) -> Catalog:
    """The live catalog of the community the command is for (see chosen_community)."""
    from storage.repositories.catalog import live_catalog

    community_id = await chosen_community(session)
    catalog = await live_catalog(session, community_id) if community_id else None
    if catalog is None:
        raise click.ClickException("no catalog imported yet: run `order-menu serve` once")
    return catalog


def catalog_or_exit(path: Path) -> Any:
    """The catalog file at ``path``, or exit 1 after listing every problem in it."""
    try:
        return load_catalog(path)
    except CatalogError as exc:
        click.echo(exc.report(), err=True)
        fail(f"{exc.source}: {len(exc.problems)} problem(s)")


def account_spec(settings: Settings) -> Any:
    """The configured community the command is for (``--community`` among several)."""
    from bot.communities import community_specs

    try:
        specs = community_specs(settings)
    except ConfigError as exc:
        fail(str(exc), 2)
    chosen = click.get_current_context().find_root().obj
    if chosen is None:
        if len(specs) > 1:
            fail("several communities in COMMUNITIES_FILE: choose one with --community", 2)
        return specs[0]
    for spec in specs:
        if spec.id == chosen:
            return spec
    fail(f"--community: '{chosen}' is not in COMMUNITIES_FILE", 2)


def invite_options(command: F) -> F:
    """``--hours`` and ``--by`` of a one-time invite code (a unit's, a grid's)."""
    command = click.option(
        "--by", "staff", default="cli", show_default=True, help="Who made it (audit)."
    )(command)
    return click.option(
        "--hours",
        type=click.FloatRange(0.1, 24 * 30),
        default=72,
        show_default=True,
        help="How long the code stays valid.",
    )(command)


def print_invite(code: str, expires: dt.datetime, zone: str, whose: str, who: str) -> None:
    """An invite code as staff pass it on: ``whose`` (for the unit 阳光物业), ``who``
    (the member, the grid worker) sends ``绑定 CODE`` in WeChat."""
    click.echo(f"Invite code {whose}: {code}")
    click.echo(f"Valid until {local_time(expires, zone)} ({zone}), once. {who} sends in WeChat:")
    click.echo(f"  绑定 {code}")
