"""Importing a catalog is idempotent and never loses history (both databases).

The catalog imported is tests/catalogs/qingshiwan.yaml (13 units, 27 items, 2 grids;
co-units: 3 on neighbour-mediation and 1 on eye-screening)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.loader import load_catalog, parse_catalog
from catalog.model import Catalog
from storage import models
from storage.order_status import OrderStatus
from storage.repositories.catalog import import_catalog, live_catalog
from storage.repositories.orders import list_orders
from tests.conftest import QINGSHIWAN

Sessions = async_sessionmaker[AsyncSession]


def qingshiwan_without(*item_ids: str) -> Catalog:
    data = yaml.safe_load(QINGSHIWAN.read_text(encoding="utf-8"))
    data["items"] = [i for i in data["items"] if i["id"] not in item_ids]
    return parse_catalog(yaml.safe_dump(data, allow_unicode=True))


async def do_import(sessionmaker: Sessions, catalog: Catalog, source: str = "test"):
    async with sessionmaker.begin() as session:
        return await import_catalog(session, catalog, source=source)


async def count(sessionmaker: Sessions, model: type) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_import_creates_everything(sessionmaker: Sessions) -> None:
    catalog = load_catalog(QINGSHIWAN)
    summary = await do_import(sessionmaker, catalog)
    assert summary.new_version
    assert len(summary.units.added) == 13 and len(summary.items.added) == 27
    assert len(summary.grids.added) == 2
    assert await count(sessionmaker, models.Item) == 27
    async with sessionmaker() as session:
        mediation = await session.scalar(
            select(models.Item).where(models.Item.key == "neighbour-mediation")
        )
        assert mediation is not None and mediation.mode == "组团式"
        co = await session.scalar(
            select(func.count()).where(models.ItemCoUnit.item_id == mediation.id)
        )
        assert co == 3
        live = await live_catalog(session, "qingshiwan")
    assert live is not None and live.version == catalog.version


async def test_importing_the_same_catalog_again_changes_nothing(sessionmaker: Sessions) -> None:
    catalog = load_catalog(QINGSHIWAN)
    await do_import(sessionmaker, catalog)
    again = await do_import(sessionmaker, catalog)
    assert not again.changed
    assert "nothing changed" in again.describe()
    assert await count(sessionmaker, models.CatalogVersion) == 1
    assert await count(sessionmaker, models.Item) == 27
    assert await count(sessionmaker, models.ItemCoUnit) == 4


async def test_dropped_item_is_retired_and_orders_keep_pointing_at_it(
    sessionmaker: Sessions,
) -> None:
    await do_import(sessionmaker, load_catalog(QINGSHIWAN))
    await place_order(sessionmaker, "law-talk", code="K7Q2M9")

    summary = await do_import(sessionmaker, qingshiwan_without("law-talk"))
    assert summary.items.retired == ["law-talk"]
    assert await count(sessionmaker, models.Item) == 27  # not deleted
    async with sessionmaker() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == "law-talk"))
        assert item is not None and item.retired_at is not None
        [order] = await list_orders(session)
        live = await live_catalog(session, "qingshiwan")
    assert order.item == "law-talk" and order.item_title == "普法讲座"
    assert live is not None and not live.has_item("law-talk")

    # Re-importing the smaller catalog retires nothing more; bringing it back restores it.
    assert not (await do_import(sessionmaker, qingshiwan_without("law-talk"))).changed
    restored = await do_import(sessionmaker, load_catalog(QINGSHIWAN))
    assert restored.items.restored == ["law-talk"]
    async with sessionmaker() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == "law-talk"))
        assert item is not None and item.retired_at is None
    assert await count(sessionmaker, models.CatalogVersion) == 3


async def test_changed_fields_are_updated_in_place(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, load_catalog(QINGSHIWAN))
    text = QINGSHIWAN.read_text(encoding="utf-8")
    co_units = "co_units: [residents-committee, estate-office, police-post]"
    assert co_units in text
    summary = await do_import(
        sessionmaker, parse_catalog(text.replace(co_units, "co_units: [police-post]"))
    )
    assert summary.items.updated == ["neighbour-mediation"]
    assert await count(sessionmaker, models.ItemCoUnit) == 2  # 1 here + 1 on eye-screening


SLOTS_CATALOG = """
community: {id: c1, name: 测试社区, grids: [{id: g1, name: 一网格}]}
units: [{id: u1, name: 单位, kind: 机关}]
items:
  - id: clinic
    title: 义诊
    unit: u1
    category: 健康
    sessions:
      - {id: dec, start: "2026-12-12 09:00", end: "2026-12-12 11:30", capacity: 40}
      - {id: jan, start: "2027-01-09 09:00", capacity: 40}
"""


async def test_slots_are_stored_in_utc_and_retired_when_dropped(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, parse_catalog(SLOTS_CATALOG))
    async with sessionmaker() as session:
        dec = await session.scalar(select(models.ItemSlot).where(models.ItemSlot.key == "dec"))
    assert dec is not None
    # 09:00 in Asia/Shanghai is 01:00 UTC, and comes back as an aware UTC time
    assert dec.starts_at == dt.datetime(2026, 12, 12, 1, 0, tzinfo=dt.UTC)
    assert dec.starts_at.tzinfo is not None and dec.capacity == 40

    without_jan = SLOTS_CATALOG.replace(
        '      - {id: jan, start: "2027-01-09 09:00", capacity: 40}\n', ""
    )
    summary = await do_import(sessionmaker, parse_catalog(without_jan))
    assert summary.slots.retired == ["clinic/jan"]
    assert await count(sessionmaker, models.ItemSlot) == 2


async def test_two_communities_do_not_touch_each_other(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, load_catalog(QINGSHIWAN))
    other = await do_import(sessionmaker, parse_catalog(SLOTS_CATALOG))
    assert other.items.retired == []
    async with sessionmaker() as session:
        qingshiwan = await live_catalog(session, "qingshiwan")
        c1 = await live_catalog(session, "c1")
    assert qingshiwan is not None and len(qingshiwan.items) == 27
    assert c1 is not None and [i.id for i in c1.items] == ["clinic"]


async def place_order(sessionmaker: Sessions, item_key: str, *, code: str) -> None:
    """An order for the item of that id, in the community of the (one) imported catalog."""
    async with sessionmaker.begin() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == item_key))
        assert item is not None
        resident = models.Resident(community_id=item.community_id, openid="o-test", name="王阿姨")
        session.add(resident)
        await session.flush()
        order = models.Order(
            community_id=item.community_id,
            code=code,
            item_id=item.id,
            unit_id=item.unit_id,
            resident_id=resident.id,
            status=OrderStatus.SUBMITTED.value,
        )
        session.add(order)
        await session.flush()
        session.add(models.OrderEvent(order_id=order.id, actor="resident", to_status="submitted"))


@pytest.mark.parametrize("naive", [dt.datetime(2026, 1, 1, 8, 0)])
async def test_naive_times_are_refused(sessionmaker: Sessions, naive: dt.datetime) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with sessionmaker.begin() as session:
            session.add(models.Community(id="x", name="X", created_at=naive))
