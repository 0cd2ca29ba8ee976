"""Importing a catalog is idempotent and never loses history (both databases)."""

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
from tests.conftest import REFERENCE_CATALOG

Sessions = async_sessionmaker[AsyncSession]


def reference_without(*item_ids: str) -> Catalog:
    data = yaml.safe_load(REFERENCE_CATALOG.read_text(encoding="utf-8"))
    data["items"] = [i for i in data["items"] if i["id"] not in item_ids]
    return parse_catalog(yaml.safe_dump(data, allow_unicode=True))


async def do_import(sessionmaker: Sessions, catalog: Catalog, source: str = "test"):
    async with sessionmaker.begin() as session:
        return await import_catalog(session, catalog, source=source)


async def count(sessionmaker: Sessions, model: type) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_first_import_creates_everything(sessionmaker: Sessions) -> None:
    catalog = load_catalog(REFERENCE_CATALOG)
    summary = await do_import(sessionmaker, catalog)
    assert summary.new_version
    assert len(summary.units.added) == 15 and len(summary.items.added) == 48
    assert len(summary.grids.added) == 3
    assert await count(sessionmaker, models.Item) == 48
    async with sessionmaker() as session:
        mediation = await session.scalar(
            select(models.Item).where(models.Item.key == "dispute-mediation")
        )
        assert mediation is not None and mediation.mode == "组团式"
        co = await session.scalar(
            select(func.count()).where(models.ItemCoUnit.item_id == mediation.id)
        )
        assert co == 4
        live = await live_catalog(session, "jiedong")
    assert live is not None and live.version == catalog.version


async def test_importing_the_same_catalog_again_changes_nothing(sessionmaker: Sessions) -> None:
    catalog = load_catalog(REFERENCE_CATALOG)
    await do_import(sessionmaker, catalog)
    again = await do_import(sessionmaker, catalog)
    assert not again.changed
    assert "nothing changed" in again.describe()
    assert await count(sessionmaker, models.CatalogVersion) == 1
    assert await count(sessionmaker, models.Item) == 48
    assert await count(sessionmaker, models.ItemCoUnit) == 5


async def test_dropped_item_is_retired_and_orders_keep_pointing_at_it(
    sessionmaker: Sessions,
) -> None:
    await do_import(sessionmaker, load_catalog(REFERENCE_CATALOG))
    await place_order(sessionmaker, "contract-review", code="K7Q2M9")

    summary = await do_import(sessionmaker, reference_without("contract-review"))
    assert summary.items.retired == ["contract-review"]
    assert await count(sessionmaker, models.Item) == 48  # not deleted
    async with sessionmaker() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == "contract-review"))
        assert item is not None and item.retired_at is not None
        [order] = await list_orders(session)
        live = await live_catalog(session, "jiedong")
    assert order.item == "contract-review" and order.item_title == "合同审查"
    assert live is not None and not live.has_item("contract-review")

    # Re-importing the smaller catalog retires nothing more; bringing it back restores it.
    assert not (await do_import(sessionmaker, reference_without("contract-review"))).changed
    restored = await do_import(sessionmaker, load_catalog(REFERENCE_CATALOG))
    assert restored.items.restored == ["contract-review"]
    async with sessionmaker() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == "contract-review"))
        assert item is not None and item.retired_at is None
    assert await count(sessionmaker, models.CatalogVersion) == 3


async def test_changed_fields_are_updated_in_place(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, load_catalog(REFERENCE_CATALOG))
    text = REFERENCE_CATALOG.read_text(encoding="utf-8").replace(
        "co_units: [police, urban-mgmt, dongxi-lane, property]", "co_units: [police]"
    )
    summary = await do_import(sessionmaker, parse_catalog(text))
    assert summary.items.updated == ["dispute-mediation"]
    assert await count(sessionmaker, models.ItemCoUnit) == 2  # 1 here + 1 on the drowning class


SESSIONS_CATALOG = """
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


async def test_sessions_are_stored_in_utc_and_retired_when_dropped(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, parse_catalog(SESSIONS_CATALOG))
    async with sessionmaker() as session:
        dec = await session.scalar(
            select(models.ItemSession).where(models.ItemSession.key == "dec")
        )
    assert dec is not None
    # 09:00 in Asia/Shanghai is 01:00 UTC, and comes back as an aware UTC time
    assert dec.starts_at == dt.datetime(2026, 12, 12, 1, 0, tzinfo=dt.UTC)
    assert dec.starts_at.tzinfo is not None and dec.capacity == 40

    without_jan = SESSIONS_CATALOG.replace(
        '      - {id: jan, start: "2027-01-09 09:00", capacity: 40}\n', ""
    )
    summary = await do_import(sessionmaker, parse_catalog(without_jan))
    assert summary.sessions.retired == ["clinic/jan"]
    assert await count(sessionmaker, models.ItemSession) == 2


async def test_two_communities_do_not_touch_each_other(sessionmaker: Sessions) -> None:
    await do_import(sessionmaker, load_catalog(REFERENCE_CATALOG))
    other = await do_import(sessionmaker, parse_catalog(SESSIONS_CATALOG))
    assert other.items.retired == []
    async with sessionmaker() as session:
        jiedong = await live_catalog(session, "jiedong")
        c1 = await live_catalog(session, "c1")
    assert jiedong is not None and len(jiedong.items) == 48
    assert c1 is not None and [i.id for i in c1.items] == ["clinic"]


async def place_order(sessionmaker: Sessions, item_key: str, *, code: str) -> None:
    async with sessionmaker.begin() as session:
        item = await session.scalar(select(models.Item).where(models.Item.key == item_key))
        assert item is not None
        resident = models.Resident(community_id="jiedong", openid="o-test", name="王阿姨")
        session.add(resident)
        await session.flush()
        order = models.Order(
            community_id="jiedong",
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
