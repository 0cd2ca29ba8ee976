"""The ``order-menu`` command line.

User mistakes (a bad setting, a broken catalog, an unknown status, an unreachable
database) end with one clear line on stderr and a non-zero exit status, never a
traceback. Exit status 1: the input is wrong; 2: usage or configuration is wrong.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
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


class DatabaseNotReady(Exception):
    pass


def fail(message: str, status: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    raise SystemExit(status)


def settings_or_exit(**overrides: Any) -> Settings:
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


# --- serve ---------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT or 8080).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the port (SO_REUSEPORT), kept running by a "
    "supervisor; use PostgreSQL for more than one.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(0, 3600),
    default=15.0,
    show_default=True,
    help="With --workers: seconds a stopping worker may take to finish what it is "
    "doing before it is killed.",
)
def serve(host: str | None, port: int | None, workers: int, stop_timeout: float) -> None:
    """Start the service: migrate the database, load the catalog, answer WeChat and the web.

    With no configuration at all it runs on SQLite (./order-menu.db) with the demo
    catalog of 解东社区 and a generated development token, and prints every page a
    newcomer can open.

    With --workers N, a supervisor process prepares once (migrations, catalog,
    dictionary) and forks N workers sharing the port; the kernel spreads connections
    over them. A worker that dies is replaced (with growing pauses if it keeps
    dying). They share everything through the database (conversation state, dedupe,
    token, outbox, reminders, broadcasts) and elect one leader for the scheduled jobs.
    """
    settings = settings_or_exit()
    host = host or settings.host
    port = settings.port if port is None else port
    if workers == 1:
        _configure_logging(settings)
        with _startup_errors():
            _serve(settings, host, port)
        return
    if settings.is_sqlite:
        # A resident's messages are serialised by a lock that on SQLite lives in one
        # process: two workers could each handle one of them at the same time.
        fail(
            f"--workers {workers}: several workers need PostgreSQL (DATABASE_URL); "
            "SQLite is served by one process",
            2,
        )
    if port == 0:
        fail("--workers: needs a fixed --port (the workers share it)", 2)
    from bot.supervisor import shared_metrics

    with shared_metrics():  # before anything imports prometheus_client
        _configure_logging(settings)
        _supervise(settings, host, port, workers, stop_timeout)


def _configure_logging(settings: Settings) -> None:
    from bot.logs import configure

    configure(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs SQL parameters at DEBUG, stored access tokens included.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


@contextmanager
def _startup_errors() -> Iterator[None]:
    """What stops the service from starting, as one ``error:`` line (a catalog's
    problems listed above it)."""
    from bot.serve import CannotListen

    try:
        yield
    except CannotListen as exc:
        fail(str(exc))
    except CatalogError as exc:
        click.echo(exc.report(), err=True)
        fail(f"{exc.source}: {len(exc.problems)} problem(s) in the catalog; not started")
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", 2)


def _serve(settings: Settings, host: str, port: int, **options: Any) -> None:
    from bot.serve import serve as run_server

    run(run_server(settings, host, port, **options), settings)


def _supervise(settings: Settings, host: str, port: int, workers: int, stop_timeout: float) -> None:
    """Prepare once, then fork ``workers`` workers and keep them serving (bot/supervisor.py)."""
    import gc

    import bot.serve  # noqa: F401  (imported once here, inherited by every worker)
    from bot import metrics
    from bot.startup import preload
    from bot.supervisor import Assignment, CannotStart, Supervisor

    with _startup_errors():
        run(preload(settings), settings)
    # Fork shares memory copy-on-write; the collector's passes over everything
    # preloaded would write to every page of it in each worker (see gc.freeze).
    gc.collect()
    gc.freeze()

    def work(worker: Assignment) -> None:
        announce = worker.slot == 0 and not worker.replacement  # one banner, not N
        with _startup_errors():
            _serve(settings, host, port, reuse_port=True, announce=announce, on_ready=worker.ready)

    supervisor = Supervisor(
        workers,
        work,
        stop_timeout=stop_timeout,
        on_exit=metrics.process_ended,
        on_restart=metrics.WORKER_RESTARTS.inc,
    )
    try:
        supervisor.run()
    except CannotStart as exc:
        fail(str(exc))


@main.command()
@click.option(
    "--as",
    "openid",
    default="o_chat_newcomer",
    show_default=True,
    help="The resident's openid to talk as.",
)
@click.option(
    "--url", default=None, help="The running server (default: http://HOST:PORT from the settings)."
)
def chat(openid: str, url: str | None) -> None:
    """Talk to a running server as a resident would, through its real /wechat webhook.

    Each line is sent as a signed WeChat message; replies are printed, including
    those delivered later through the customer-service API. Type /help for voice,
    images, places, menu clicks and following.

    Exits 1 if nothing answers at the server's address (with input piped in, also
    when the server goes away during the chat).
    """
    from bot.chat import ServerUnreachable, run_chat
    from bot.startup import dev_token_key
    from storage.repositories.instance import get_value

    settings = settings_or_exit()
    spec = _account_spec(settings)
    token = spec.wechat_token
    if token is None:  # the development token serve generated and stored
        key = dev_token_key(spec, spec.id or "")

        async def stored() -> str | None:
            async with database(settings) as (_, sessionmaker), sessionmaker() as session:
                return await get_value(session, key)

        token = run(stored(), settings)
        if token is None:
            fail("no WECHAT_TOKEN set and no development token yet: start `order-menu serve` first")
    assert token is not None
    base = url or f"http://{settings.host}:{settings.port}"
    path = f"/wechat/{spec.id}" if spec.id else "/wechat"
    try:
        run_chat(base, token, openid, spec.wechat_encoding_aes_key, spec.wechat_app_id, path)
    except ServerUnreachable as exc:
        fail(str(exc))


# --- db ------------------------------------------------------------------------------


@main.group()
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


# --- catalog -------------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """Check and import service catalogs (YAML, see docs/catalog.md)."""


def _load_or_exit(path: Path) -> Any:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        click.echo(exc.report(), err=True)
        fail(f"{exc.source}: {len(exc.problems)} problem(s)")


@catalog.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def catalog_validate(file: Path) -> None:
    """Check FILE and list every problem as `path: message`; exit 1 if there is any."""
    loaded = _load_or_exit(file)
    click.echo(
        f"{file}: OK — {loaded.community_name}, {len(loaded.units)} units, "
        f"{len(loaded.items)} items, {len(loaded.categories)} categories (version {loaded.version})"
    )


@catalog.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def catalog_import(file: Path, as_json: bool) -> None:
    """Make the database match FILE.

    Idempotent: importing the same file again changes nothing. Units, items, grids and
    sessions missing from FILE are retired (kept for the orders that point at them),
    and restored if they come back. A running server picks the change up on restart.
    """
    from bot.startup import file_sha256
    from storage.repositories.catalog import import_catalog

    settings = settings_or_exit()
    loaded = _load_or_exit(file)

    async def go() -> Any:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            return await import_catalog(
                session, loaded, source=str(file), source_sha256=file_sha256(file)
            )

    summary = run(go(), settings)
    click.echo(json.dumps(summary.as_dict(), ensure_ascii=False) if as_json else summary.describe())


@catalog.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the catalog YAML here (default: standard output).",
)
@click.option(
    "--regression",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the learning inbox's decisions as labelled messages (JSON lines).",
)
def catalog_export(output: Path | None, regression: Path | None) -> None:
    """Write the live catalog with what staff taught in the learning inbox folded in.

    Phrases staff made synonyms of an item, questions of a FAQ entry or ignored are
    written into the item's `synonyms`, the entry's `questions` and the top-level
    `ignore` list, so they can be committed to the catalog's YAML file. The file is
    regenerated from the stored catalog: comments and the original key order are not
    kept. Decisions whose item or FAQ entry is no longer in the catalog are listed on
    stderr and left out.
    """
    import yaml

    from catalog.learned import Learning, is_stale, regression_line, with_learned
    from storage.repositories.inbox import decisions_in_effect

    settings = settings_or_exit()

    async def go() -> tuple[Catalog, list[Any]]:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            base = await community_catalog(session)
            return base, await decisions_in_effect(session, base.community_id)

    base, rows = run(go(), settings)
    learned = tuple(row.learned for row in rows)
    stale = [one for one in learned if is_stale(base.document, one)]
    for one in stale:
        click.echo(
            f"warning: '{one.phrase}' was made a {one.action} of '{one.target}', "
            "which is not in the catalog any more: left out",
            err=True,
        )
    exported = with_learned(base, Learning(1, learned))
    data = exported.document.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    if regression is not None:
        lines = [
            json.dumps(regression_line(one), ensure_ascii=False) + "\n"
            for one in learned
            if one not in stale
        ]
        regression.write_text("".join(lines), encoding="utf-8")
        click.echo(f"{len(lines)} labelled message(s) written to {regression}", err=True)


# --- match ---------------------------------------------------------------------------


@main.command()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    help="Catalog YAML (default: CATALOG_PATH, else the demo catalog).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input line.")
@click.option("--explain", is_flag=True, help="Also show the catalog terms found in each message.")
@click.argument("text", nargs=-1)
def match(catalog_path: Path | None, as_json: bool, explain: bool, text: tuple[str, ...]) -> None:
    """Show what the bot understands from resident messages.

    Each TEXT is one message; with no TEXT, one message per line is read from stdin.
    First what the resident is doing (the act: request, greeting, thanks, outcome,
    rating, cancel, question, complaint, emergency, chat, ack); for a request, the
    decision: `matched` (one item), `ambiguous` (2–3 choices to offer) or `none`
    (nothing in the catalog: an unmet need in a conversation); for a question, the FAQ
    entry that answers it.
    """
    import sys

    from bot.startup import catalog_file
    from catalog.matcher import Matcher
    from catalog.understanding import understand

    settings = settings_or_exit()
    path = catalog_path or catalog_file(settings)
    matcher = Matcher(_load_or_exit(path), thresholds=settings.thresholds)
    messages = text or tuple(line.rstrip("\r\n") for line in sys.stdin)
    for message in messages:
        reading = understand(message, matcher)
        if as_json:
            found = {**reading.match.as_json(), "act": reading.act.value}
            found["faq"] = reading.faq.faq.id if reading.faq else None
            click.echo(json.dumps(found, ensure_ascii=False))
            continue
        click.echo(_describe_reading(matcher, reading, explain))


def _describe_reading(matcher: Any, reading: Any, explain: bool) -> str:
    catalog = matcher.catalog
    result = reading.match
    act = reading.act.value
    if reading.faq is not None:
        line = f"{act:<9} faq {reading.faq.faq.id} {reading.faq.score:.2f}"
    elif reading.detail.emergency is not None:
        line = f"{act:<9} {reading.detail.emergency.value}"
    elif act != "request":
        line = act
    elif result.decision == "matched":
        line = f"matched   {catalog.item(result.item).title} ({result.item}) {result.score:.2f}"
    elif result.decision == "ambiguous":
        choices = " | ".join(
            f"{catalog.item(c.item).title} {c.score:.2f}" for c in result.candidates
        )
        line = f"ambiguous {choices}"
    else:
        line = "none"
    line = f"{line}\t{reading.text}"
    if explain:
        line += f"\n          terms: {', '.join(result.terms) or '-'}"
    return line


# --- needs ---------------------------------------------------------------------------


@main.group()
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


# --- orders --------------------------------------------------------------------------


@main.group()
def orders() -> None:
    """Look at orders."""


@orders.command("list")
@click.option("--status", "status_text", help="Only this status (e.g. submitted, 已派单).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def orders_list(status_text: str | None, limit: int, as_json: bool) -> None:
    """List orders, newest first."""
    from storage.order_status import parse_status
    from storage.repositories.orders import list_orders

    status = None
    if status_text is not None:
        try:
            status = parse_status(status_text)
        except ValueError as exc:
            fail(f"--status: {exc}", 2)
    settings = settings_or_exit()

    async def go() -> Any:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            community_id = await chosen_community(session)
            if community_id is None:
                return []
            return await list_orders(session, community_id=community_id, status=status, limit=limit)

    rows = run(go(), settings)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_json(), ensure_ascii=False))
        return
    if not rows:
        click.echo("no orders" + (f" with status {status.value}" if status else ""))
        return
    for row in rows:
        created = local_time(row.created_at, row.timezone)
        click.echo(
            f"{row.code:<10} {created}  {row.status.label:<4} {row.item_title}"
            f" ({row.unit})  {row.resident}" + (f"  [{row.session}]" if row.session else "")
        )


@orders.command("create")
@click.option("--item", "item_key", required=True, help="The item's id in the catalog.")
@click.option("--name", required=True, help="The resident's name (代办: they have no WeChat).")
@click.option("--phone", required=True, help="The resident's mobile number.")
@click.option("--building", default=None, help="Where they live or where the need is.")
@click.option(
    "--session", "session_key", default=None, help="The session's id (items with sessions)."
)
@click.option("--people", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--note", default="", help="The need in the resident's words.")
@click.option(
    "--by", "staff", default="cli", show_default=True, help="Who places it (audit trail)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the order as JSON.")
def orders_create(
    item_key: str,
    name: str,
    phone: str,
    building: str | None,
    session_key: str | None,
    people: int,
    note: str,
    staff: str,
    as_json: bool,
) -> None:
    """Place an order on behalf of a resident without a smartphone (代办)."""
    from catalog.answers import parse_phone
    from storage.repositories.proxy import ProxyOrderError, place_proxy_order

    mobile = parse_phone(phone)
    if mobile is None:
        fail(f"--phone: '{phone}' is not a mainland mobile number (11 digits, 13x-19x)", 2)
    assert mobile is not None
    if not name.strip():
        fail("--name: must not be empty", 2)
    settings = settings_or_exit()

    async def go() -> Any:
        from bot import order_effects as effects

        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            order, summary = await place_proxy_order(
                session,
                community_id=catalog.community_id,
                item_key=item_key,
                name=name.strip(),
                phone=mobile,
                building=building,
                session_key=session_key,
                people=people,
                note=note,
                staff=staff,
            )
            # The unit is notified and chased like for any order, in the same transaction.
            policy = effects.Policy.from_settings(settings)
            await effects.announce_new_order(session, catalog, policy, order, order.created_at)
            return summary

    try:
        placed = run(go(), settings)
    except ProxyOrderError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(placed, ensure_ascii=False))
    else:
        click.echo(
            f"订单号：{placed['code']}  {placed['item_title']} ({placed['unit']}) for {name}"
        )


# --- units ---------------------------------------------------------------------------


@main.group()
def units() -> None:
    """Partner units and their members."""


@units.command("invite")
@click.argument("unit_key", metavar="UNIT")
@click.option(
    "--hours",
    type=click.FloatRange(0.1, 24 * 30),
    default=72,
    show_default=True,
    help="How long the code stays valid.",
)
@click.option("--by", "staff", default="cli", show_default=True, help="Who made it (audit).")
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
    click.echo(f"Invite code for {unit_name}: {code}")
    click.echo(
        f"Valid until {local_time(expires, zone)} ({zone}), once. The member sends in WeChat:"
    )
    click.echo(f"  绑定 {code}")


# --- broadcasts ----------------------------------------------------------------------


@main.group()
def broadcast() -> None:
    """Safety-campaign notices to subscribed residents (反诈, 防溺水 …)."""


@broadcast.command("create")
@click.option("--topic", required=True, help="Topic id or name (防溺水, anti-fraud …).")
@click.option("--title", required=True, help="A short title (at most 40 characters).")
@click.option("--text", "body", required=True, help="The notice (at most 600 characters).")
@click.option("--grid", default=None, help="Only residents of this grid (网格) id.")
@click.option("--tag", default=None, help="Only residents with this tag (e.g. 有未成年子女).")
@click.option(
    "--at",
    "at_text",
    default=None,
    help="Send once at this local time (YYYY-MM-DD HH:MM); default now.",
)
@click.option("--cron", default=None, help='Recurring, crontab in local time: "0 10 * * FRI".')
@click.option("--from", "from_text", default=None, help="First day of a recurring broadcast.")
@click.option("--until", "until_text", default=None, help="Last day of a recurring broadcast.")
@click.option("--yes", is_flag=True, help="Schedule it; without it only the preview is shown.")
def broadcast_create(
    topic: str,
    title: str,
    body: str,
    grid: str | None,
    tag: str | None,
    at_text: str | None,
    cron: str | None,
    from_text: str | None,
    until_text: str | None,
    yes: bool,
) -> None:
    """Preview a broadcast, and schedule it with --yes."""
    import datetime as dt

    from bot.broadcasts import BroadcastProblem, prepare

    settings = settings_or_exit()

    async def go() -> tuple[int, list[str], int | None]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            draft = await prepare(
                session,
                catalog,
                topic=topic,
                title=title,
                text=body,
                grid=grid,
                tag=tag,
                at=at_text,
                cron=cron,
                active_from=from_text,
                active_until=until_text,
                now=dt.datetime.now(dt.UTC),
            )
            broadcast_id = None
            if yes:
                session.add(draft.row)
                await session.flush()
                broadcast_id = draft.row.id
            return draft.recipients, draft.dates, broadcast_id

    try:
        recipients, dates, broadcast_id = run(go(), settings)
    except BroadcastProblem as exc:
        fail("; ".join(f"--{p.strip()}" for p in str(exc).split(";")), 2)
        return
    except click.ClickException as exc:
        fail(exc.message)
        return
    click.echo(f"【{title}】")
    click.echo(body)
    click.echo("")
    click.echo(f"to: {recipients} subscribed residents now; {len(body)} characters")
    click.echo("sends: " + ", ".join(dates) + (" …" if len(dates) == 5 else ""))
    if broadcast_id is None:
        click.echo("preview only: add --yes to schedule it")
    else:
        click.echo(
            f"scheduled: broadcast {broadcast_id} (order-menu broadcast status {broadcast_id})"
        )


@broadcast.command("status")
@click.argument("broadcast_id", type=int)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every delivery to this CSV file.",
)
def broadcast_status(broadcast_id: int, csv_path: Path | None) -> None:
    """Progress of a broadcast: a bar, counts by status, failures by reason.

    ``unknown`` deliveries were sent without a clear answer from WeChat: probably
    delivered, and never sent again.
    """
    from bot.broadcasts import UNKNOWN_MEANS
    from bot.spreadsheets import write_csv
    from storage import models
    from storage.repositories.broadcasts import delivery_rows, progress

    settings = settings_or_exit()

    async def go() -> Any:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            community_id = await chosen_community(session)
            row = await session.get(models.Broadcast, broadcast_id)
            if row is None or row.community_id != community_id:
                raise click.ClickException(f"BROADCAST_ID: no broadcast {broadcast_id}")
            rows = await delivery_rows(session, broadcast_id) if csv_path else []
            return row, await progress(session, broadcast_id), rows

    try:
        row, done, rows = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    width = 30
    filled = int(width * done.finished / done.total) if done.total else 0
    percent = 100 * done.finished / done.total if done.total else 0
    click.echo(f"broadcast {broadcast_id} 【{row.title}】 topic {row.topic}, {row.status}")
    click.echo(f"{done.runs} run(s)")
    click.echo(
        f"[{'#' * filled}{'.' * (width - filled)}] {done.finished}/{done.total} ({percent:.0f}%)"
    )
    for status in ("sent", "pending", "sending", "skipped", "failed", "unknown"):
        if done.by_status.get(status):
            meaning = f" ({UNKNOWN_MEANS})" if status == "unknown" else ""
            click.echo(f"  {status:<8} {done.by_status[status]}{meaning}")
    for reason, n in sorted(done.failures.items(), key=lambda kv: -kv[1]):
        click.echo(f"  - {reason}: {n}")
    if csv_path is not None:
        header = ["run_due_at", "openid", "status", "reason", "attempts", "updated_at"]
        with csv_path.open("w", newline="", encoding="utf-8-sig") as file:
            write_csv(  # openids and WeChat's reasons are others' text: never formulas
                file,
                header,
                ([v.isoformat() if hasattr(v, "isoformat") else v for v in r] for r in rows),
            )
        click.echo(f"wrote {len(rows)} deliveries to {csv_path}")


# --- residents -----------------------------------------------------------------------


@main.group()
def residents() -> None:
    """Residents' grid and tags (for targeting broadcasts)."""


@residents.command("set")
@click.argument("openid")
@click.option("--grid", default=None, help="The resident's grid (网格) id.")
@click.option("--add-tag", "add", multiple=True, help="Add a tag (repeatable).")
@click.option("--remove-tag", "remove", multiple=True, help="Remove a tag (repeatable).")
def residents_set(
    openid: str, grid: str | None, add: tuple[str, ...], remove: tuple[str, ...]
) -> None:
    """Set a resident's grid and tags (e.g. 独居老人, 有未成年子女)."""
    from storage import models

    settings = settings_or_exit()

    async def go() -> list[str]:
        from sqlalchemy import select

        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            resident = await session.scalar(
                select(models.Resident).where(
                    models.Resident.community_id == catalog.community_id,
                    models.Resident.openid == openid,
                )
            )
            if resident is None:
                raise click.ClickException(f"OPENID: no resident '{openid}'")
            if grid is not None:
                if grid not in {g.id for g in catalog.document.community.grids}:
                    raise click.ClickException(f"--grid: no grid '{grid}'")
                resident.grid_key = grid
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


# --- users ---------------------------------------------------------------------------


@main.group()
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


# --- menu ----------------------------------------------------------------------------


@main.group()
def menu() -> None:
    """The official account's custom menu (自定义菜单)."""


@menu.command("push")
@click.option(
    "--file",
    "menu_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Menu in YAML, or JSON when the name ends in .json (default: the three-button menu).",
)
def menu_push(menu_file: Path | None) -> None:
    """Replace the account's custom menu with FILE's, or with the default menu.

    The default menu has three CLICK buttons: 服务点单 (key MENU_SERVICES), 我的订单
    (MY_ORDERS) and 帮助 (HELP). A file uses WeChat's own menu format:

    \b
      button:                    # 1 to 3 buttons
        - name: 服务点单         # up to 16 bytes (4 汉字)
          type: click            # click needs a key, view a url
          key: MENU_SERVICES
        - name: 更多
          sub_button:            # instead of a type: 1 to 5 sub-buttons
            - name: 社区公示     # up to 60 bytes
              type: view
              url: https://example.org/notices

    Needs WECHAT_APP_ID and WECHAT_APP_SECRET, and a migrated database (the access
    token is kept there). WeChat clients show the new menu within minutes.
    """
    from bot.wechat import default_menu

    settings = settings_or_exit()
    app_id, app_secret = _app_credentials(settings)
    body = _load_menu(menu_file) if menu_file else default_menu()
    _push_menu(settings, app_id, app_secret, body)
    click.echo(
        f"menu pushed: {', '.join(str(b['name']) for b in body['button'])} "
        f"({settings.wechat_api_base})"
    )


def _account_spec(settings: Settings) -> Any:
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


def _app_credentials(settings: Settings) -> tuple[str, str]:
    """AppID and AppSecret, or exit 2 naming whichever is missing."""
    spec = _account_spec(settings)
    app_id, app_secret = spec.wechat_app_id or "", spec.wechat_app_secret or ""
    prefix = f"{spec.id.upper().replace('-', '_')}_" if spec.id else ""
    missing = [
        name
        for name, value in (
            (f"{prefix}WECHAT_APP_ID", app_id),
            (f"{prefix}WECHAT_APP_SECRET", app_secret),
        )
        if not value
    ]
    if missing:
        fail(f"{' and '.join(missing)} must be set to call the WeChat API", 2)
    return app_id, app_secret


def _push_menu(settings: Settings, app_id: str, app_secret: str, body: dict[str, Any]) -> None:
    """Create the menu through the API client; WeChat's refusal becomes one error line."""
    import aiohttp

    from bot.wechat.api import WeChatAPI
    from bot.wechat.errors import InvalidCredential, WeChatError

    async def go() -> None:
        async with database(settings) as (_, sessionmaker), aiohttp.ClientSession() as http:
            api = WeChatAPI(
                app_id=app_id,
                app_secret=app_secret,
                base_url=settings.wechat_api_base,
                sessionmaker=sessionmaker,
                community_id=await _community_id(sessionmaker, settings),
                http=http,
            )
            await api.create_menu(body)

    try:
        run(go(), settings)
    except InvalidCredential as exc:
        fail(f"WeChat refused the credentials (check WECHAT_APP_ID/WECHAT_APP_SECRET): {exc}", 2)
    except WeChatError as exc:
        fail(f"the menu was not pushed: {exc}")


async def _community_id(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """The community whose token the push uses: the live catalog's, else the catalog file's."""
    from bot.startup import catalog_file
    from storage.repositories.catalog import live_catalog

    spec = _account_spec(settings)
    if spec.id is not None:
        return str(spec.id)
    async with sessionmaker() as session:
        live = await live_catalog(session)
    if live is not None:
        return live.community_id
    loaded = await asyncio.to_thread(_load_or_exit, catalog_file(settings))
    return str(loaded.community_id)


def _load_menu(path: Path) -> dict[str, Any]:
    """Read and check a menu file; every problem is listed before exiting with status 1."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    except (ValueError, yaml.YAMLError) as exc:
        fail(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}")
    problems = _menu_problems(data)
    if problems:
        for problem in problems:
            click.echo(f"{path}: {problem}", err=True)
        fail(f"{path}: {len(problems)} problem(s) in the menu")
    assert isinstance(data, dict)
    return data


def _menu_problems(data: Any) -> list[str]:
    """The menu's shape by WeChat's rules; WeChat itself checks the finer limits."""
    buttons = data.get("button") if isinstance(data, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return ["button: expected a list of 1 to 3 buttons"]
    problems: list[str] = []
    for i, button in enumerate(buttons):
        where = f"button[{i}]"
        problems += _named_problems(button, where)
        if not isinstance(button, dict):
            continue
        subs = button.get("sub_button")
        if subs is None:
            problems += _leaf_problems(button, where)
        elif not isinstance(subs, list) or not 1 <= len(subs) <= 5:
            problems.append(f"{where}.sub_button: expected a list of 1 to 5 buttons")
        else:
            for j, sub in enumerate(subs):
                sub_where = f"{where}.sub_button[{j}]"
                problems += _named_problems(sub, sub_where)
                if isinstance(sub, dict):
                    problems += _leaf_problems(sub, sub_where)
    return problems


_LEAF_FIELDS = {
    "view": ("url",),
    "miniprogram": ("url", "appid", "pagepath"),
    "media_id": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
}
"""What a button of each type needs besides its name; every other type needs a key."""


def _named_problems(button: object, where: str) -> list[str]:
    """A button must be a mapping with a name, whether it has sub-buttons or not."""
    if not isinstance(button, dict):
        return [f"{where}: expected a mapping with name and type"]
    if not isinstance(button.get("name"), str) or not button["name"]:
        return [f"{where}.name: required"]
    return []


def _leaf_problems(button: dict[str, Any], where: str) -> list[str]:
    kind = button.get("type")
    if not isinstance(kind, str) or not kind:
        return [f"{where}.type: required (click, view, miniprogram …) unless it has sub_button"]
    return [
        f"{where}.{name}: required for type {kind}"
        for name in _LEAF_FIELDS.get(kind, ("key",))
        if not isinstance(button.get(name), str) or not button[name]
    ]
