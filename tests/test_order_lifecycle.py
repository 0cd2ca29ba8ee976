"""The order state machine, places that never overbook, and proxy orders (代办)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from bot.orders import domain
from bot.orders.effects import Policy
from catalog.loader import load_catalog
from catalog.model import Catalog
from storage import models
from storage.order_status import (
    TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    check_transition,
)
from storage.repositories import ordering as repo
from storage.repositories import residents
from storage.repositories.catalog import import_catalog, live_catalog
from storage.types import utcnow
from tests.ordering_catalog import write_catalog

Sessions = async_sessionmaker[AsyncSession]
PAIRS = list(itertools.product(OrderStatus, OrderStatus))


@pytest.mark.parametrize(("current", "wanted"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_is_allowed_or_refused_clearly(
    current: OrderStatus, wanted: OrderStatus
) -> None:
    if wanted in TRANSITIONS[current]:
        check_transition("AB23CD", current, wanted)
        return
    with pytest.raises(IllegalTransition) as refused:
        check_transition("AB23CD", current, wanted)
    message = str(refused.value)
    assert "AB23CD" in message and current.value in message and wanted.value in message


def test_the_life_cycle_reaches_every_status() -> None:
    reachable = {OrderStatus.SUBMITTED}
    frontier = [OrderStatus.SUBMITTED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(OrderStatus)
    finals = {s for s, nxt in TRANSITIONS.items() if not nxt}
    # A rated order may still be reopened (回访: 没解决); 办不了 is an end.
    assert finals == {OrderStatus.NOT_POSSIBLE, OrderStatus.CANCELLED, OrderStatus.CLOSED}


@pytest.fixture
async def imported(sessionmaker: Sessions, tmp_path: Path) -> Path:
    path = write_catalog(tmp_path, capacity=10)
    async with sessionmaker.begin() as session:
        await import_catalog(session, load_catalog(path), source=str(path), source_sha256="x")
    return path


async def _scope(session: AsyncSession) -> dict[str, Catalog | Policy | dt.datetime]:
    """What the order domain needs besides the order: the catalog, policy and time."""
    catalog = await live_catalog(session, "testville")
    assert catalog is not None
    return {"catalog": catalog, "policy": Policy(), "now": utcnow()}


async def _order(
    sessionmaker: Sessions,
    openid: str,
    *,
    item: str = "home-repair",
    slot_key: str | None = None,
) -> str:
    async with sessionmaker.begin() as session:
        row = await repo.item_row(session, "testville", item)
        resident = await residents.resident_for(session, "testville", openid)
        slot_id = None
        if slot_key:
            found = await session.scalar(
                select(models.ItemSlot).where(models.ItemSlot.key == slot_key)
            )
            assert found is not None
            slot_id = found.id
        order = await domain.place_order(
            session,
            **await _scope(session),
            item=row,
            resident=resident,
            answers={},
            slot_id=slot_id,
        )
        return order.code


async def test_transitions_write_the_audit_trail_and_refuse_illegal_moves(
    sessionmaker: Sessions, imported: Path
) -> None:
    code = await _order(sessionmaker, "o_a")
    async with sessionmaker.begin() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
        assert order is not None
        scope = await _scope(session)
        move = functools.partial(domain.transition, session, order, **scope)
        await move(OrderStatus.ACCEPTED, actor="unit:property")
        with pytest.raises(IllegalTransition, match="accepted; it cannot become rated"):
            await move(OrderStatus.RATED, actor="resident")
        with pytest.raises(IllegalTransition, match="accepted; it cannot become returned"):
            await move(OrderStatus.RETURNED, actor="unit:property")  # only staff approve
        await move(OrderStatus.RETURN_ASKED, actor="unit:property", reason="配件没到")
        with pytest.raises(IllegalTransition):  # a refusal goes back where it was, only
            await move(OrderStatus.IN_SERVICE, actor="staff:li")
        await move(OrderStatus.RETURNED, actor="staff:li", reason="同意")
        await move(OrderStatus.DISPATCHED, actor="staff:li")
    async with sessionmaker() as session:
        events = (
            await session.scalars(
                select(models.OrderEvent)
                .where(models.OrderEvent.order_id == order.id)
                .order_by(models.OrderEvent.id)
            )
        ).all()
    assert [(e.actor, e.from_status, e.to_status, e.note) for e in events] == [
        ("resident", None, "submitted", None),
        ("system", "submitted", "dispatched", "自动派单"),
        ("unit:property", "dispatched", "accepted", None),
        ("unit:property", "accepted", "return_asked", "配件没到"),
        ("staff:li", "return_asked", "returned", "同意"),
        ("staff:li", "returned", "dispatched", None),
    ]


async def test_fifty_residents_racing_for_ten_places(
    sessionmaker: Sessions, imported: Path
) -> None:
    async def attempt(n: int) -> str:
        try:
            return await _order(
                sessionmaker, f"o_race_{n}", item="health-lecture", slot_key="first"
            )
        except repo.SlotFull:
            return "full"

    results = await asyncio.gather(*(attempt(n) for n in range(50)))
    placed = [r for r in results if r != "full"]
    assert len(placed) == 10 and len(set(placed)) == 10
    async with sessionmaker() as session:
        first = await session.scalar(select(models.ItemSlot).where(models.ItemSlot.key == "first"))
        count = await session.scalar(select(func.count(models.Order.id)))
    assert first is not None and first.booked == 10 and count == 10

    # A cancellation frees its place for the next resident.
    async with sessionmaker.begin() as session:
        await domain.cancel_by_resident(
            session, **await _scope(session), openid=_openid_of(results, placed[0]), code=placed[0]
        )
    assert await _order(sessionmaker, "o_late", item="health-lecture", slot_key="first")


def _openid_of(results: list[str], code: str) -> str:
    return f"o_race_{results.index(code)}"


async def test_codes_are_short_unambiguous_and_not_sequential(
    sessionmaker: Sessions, imported: Path
) -> None:
    codes = [await _order(sessionmaker, f"o_{n}") for n in range(20)]
    assert len(set(codes)) == 20
    assert all(len(c) == 6 and set(c) <= set(repo.CODE_ALPHABET) for c in codes)
    assert not set("01OIL") & set("".join(codes))
    # Sequential codes would share all but their last characters with the previous one.
    assert not any(a[:4] == b[:4] for a, b in itertools.pairwise(codes))


def test_proxy_orders_from_the_cli(db_url: str, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path)
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}
    assert runner.invoke(main, ["catalog", "import", str(catalog)], env=env).exit_code == 0

    placed = runner.invoke(
        main,
        [
            "orders",
            "create",
            "--consent-given",
            "--item",
            "allowance",
            "--name",
            "张奶奶",
            "--phone",
            "138 0000 1234",
            "--building",
            "7栋1单元",
            "--note",
            "腿脚不便，没有智能手机",
            "--by",
            "li",
            "--json",
        ],
        env=env,
    )
    assert placed.exit_code == 0, placed.output
    order = json.loads(placed.output)
    assert order["placed_by"] == "staff:li" and order["status"] == "dispatched"

    listed = runner.invoke(main, ["orders", "list", "--json"], env=env)
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert {"code", "item", "unit", "status", "resident", "session", "created_at"} <= set(row)
    assert row["code"] == order["code"] and row["resident"] == "张奶奶"

    lecture = runner.invoke(
        main,
        [
            "orders",
            "create",
            "--consent-given",
            "--item",
            "health-lecture",
            "--name",
            "李大爷",
            "--phone",
            "13900001111",
            "--session",
            "first",
            "--people",
            "2",
        ],
        env=env,
    )
    assert lecture.exit_code == 0 and "订单号：" in lecture.output

    for args, complaint in (
        (["--item", "no-such-item"], "--item: no item 'no-such-item'"),
        (["--item", "allowance", "--phone", "12345"], "--phone: '12345' is not a mainland mobile"),
        (["--item", "health-lecture"], "--session: item 'health-lecture' needs one of: first"),
        (["--item", "health-lecture", "--session", "nope"], "has no session 'nope'"),
        (["--item", "health-lecture", "--slot", "nope"], "has no session 'nope'"),  # alias
    ):
        base = {"--name": "王", "--phone": "13800000000"}
        flags = [*args, "--consent-given"]
        for flag, value in base.items():
            if flag not in flags:
                flags += [flag, value]
        failed = runner.invoke(main, ["orders", "create", *flags], env=env)
        assert failed.exit_code != 0 and complaint in failed.output, failed.output
