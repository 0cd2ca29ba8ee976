"""``order-menu orders``: list orders, and place one on behalf of a resident (代办)."""

from __future__ import annotations

import json
from typing import Any

import click

from bot.cli.common import (
    chosen_community,
    community_catalog,
    database,
    fail,
    local_time,
    run,
    settings_or_exit,
)


@click.group()
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
            f" ({row.unit})  {row.resident}" + (f"  [{row.slot}]" if row.slot else "")
        )


@orders.command("create")
@click.option("--item", "item_key", required=True, help="The item's id in the catalog.")
@click.option("--name", required=True, help="The resident's name (代办: they have no WeChat).")
@click.option("--phone", required=True, help="The resident's mobile number.")
@click.option("--building", default=None, help="Where they live or where the need is.")
@click.option(
    "--session",
    "--slot",
    "slot_key",
    default=None,
    help="The slot's id (an entry of the item's sessions: in the catalog, or a weekly slot's).",
)
@click.option("--people", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--note", default="", help="The need in the resident's words.")
@click.option(
    "--by", "staff", default="cli", show_default=True, help="Who places it (audit trail)."
)
@click.option(
    "--consent-given",
    is_flag=True,
    help="The resident was told what is kept and who sees it, and agreed (required).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the order as JSON.")
def orders_create(
    item_key: str,
    name: str,
    phone: str,
    building: str | None,
    slot_key: str | None,
    people: int,
    note: str,
    staff: str,
    consent_given: bool,
    as_json: bool,
) -> None:
    """Place an order on behalf of a resident without a smartphone (代办)."""
    from catalog.answers import parse_phone
    from storage.repositories.proxy import ProxyOrderError

    mobile = parse_phone(phone)
    if mobile is None:
        fail(f"--phone: '{phone}' is not a mainland mobile number (11 digits, 13x-19x)", 2)
    assert mobile is not None
    if not name.strip():
        fail("--name: must not be empty", 2)
    if not consent_given:
        fail(
            "--consent-given: tell the resident what is kept and who sees it "
            "(docs/privacy.md), and pass this flag once they agree",
            2,
        )
    settings = settings_or_exit()

    async def go() -> Any:
        from bot.orders import domain
        from bot.orders.effects import Policy
        from storage.types import utcnow

        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            # Placed and dispatched like a chat order: the same places, the unit
            # notified and chased, all in this transaction.
            _, summary = await domain.place_proxy_order(
                session,
                catalog=catalog,
                policy=Policy.from_settings(settings),
                now=utcnow(),
                community_id=catalog.community_id,
                item_key=item_key,
                name=name.strip(),
                phone=mobile,
                building=building,
                slot_key=slot_key,
                people=people,
                note=note,
                staff=staff,
            )
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
