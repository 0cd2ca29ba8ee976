"""动态考评 figures against a history computed by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.loader import load_catalog
from storage import models
from storage.repositories.catalog import import_catalog
from storage.repositories.evaluation import unit_months
from tests.fake_clock import SHANGHAI
from tests.ordering_catalog import write_catalog
from tests.test_ordering import say

Sessions = async_sessionmaker[AsyncSession]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


# (code, rating, [(local time, status)]) for the property company (promise: 24 h).
HISTORY = [
    (
        "A00001",
        5,
        [
            ("2026-11-02 10:00", "dispatched"),
            ("2026-11-02 12:00", "accepted"),
            ("2026-11-02 14:00", "in_service"),
            ("2026-11-03 10:00", "completed"),
            ("2026-11-03 18:00", "rated"),
        ],
    ),
    (
        "B00002",
        3,
        [
            ("2026-11-05 09:00", "dispatched"),
            ("2026-11-06 15:00", "accepted"),
            ("2026-11-06 16:00", "in_service"),
            ("2026-11-07 09:00", "completed"),
            ("2026-11-07 10:00", "rated"),
        ],
    ),
    ("C00003", None, [("2026-11-20 10:00", "dispatched"), ("2026-11-20 11:00", "cancelled")]),
    ("D00004", None, [("2026-10-30 23:30", "dispatched"), ("2026-10-31 08:00", "accepted")]),
    ("E00005", None, [("2026-11-01 00:30", "dispatched"), ("2026-11-01 01:00", "accepted")]),
]


@pytest.fixture
async def history(sessionmaker: Sessions, tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="t", source_sha256="t")
        item = await session.scalar(select(models.Item).where(models.Item.key == "home-repair"))
        assert item is not None
        resident = models.Resident(community_id="testville", openid="o_x", tags=[])
        session.add(resident)
        await session.flush()
        for code, rating, events in HISTORY:
            order = models.Order(
                community_id="testville",
                code=code,
                item_id=item.id,
                unit_id=item.unit_id,
                resident_id=resident.id,
                status=events[-1][1],
                answers={},
                rating=rating,
            )
            session.add(order)
            await session.flush()
            previous = "submitted"
            session.add(
                models.OrderEvent(
                    order_id=order.id,
                    actor="resident",
                    from_status=None,
                    to_status="submitted",
                    at=at(events[0][0]) - dt.timedelta(minutes=1),
                )
            )
            for when, status in events:
                session.add(
                    models.OrderEvent(
                        order_id=order.id,
                        actor="x",
                        from_status=previous,
                        to_status=status,
                        at=at(when),
                    )
                )
                previous = status


async def test_monthly_figures_match_the_hand_computed_ones(
    sessionmaker: Sessions, history: None
) -> None:
    async with sessionmaker() as session:
        figures = {f.month: f for f in await unit_months(session, "testville", SHANGHAI)}
    november, october = figures["2026-11"], figures["2026-10"]

    # November (local time): A, B, C and E (dispatched 00:30 on the 1st, Shanghai).
    assert november.volume == 4
    assert november.response_rate == pytest.approx(2 / 4)  # A in 2 h, E in 0.5 h; B took 30 h
    assert november.resolution_rate == pytest.approx(2 / 4)  # A and B
    assert november.satisfaction_rate == pytest.approx(1 / 2)  # A rated 5, B rated 3
    assert november.avg_accept_hours == pytest.approx((2 + 30 + 0.5) / 3)
    assert november.avg_complete_hours == pytest.approx((24 + 48) / 2)
    assert november.composite((0.1, 0.5, 0.4)) == pytest.approx(0.1 * 0.5 + 0.5 * 0.5 + 0.4 * 0.5)

    # October: D only; nothing rated, so satisfaction is left out of the composite.
    assert october.volume == 1 and october.response_rate == 1.0
    assert october.resolution_rate == 0.0 and october.satisfaction_rate is None
    assert october.composite((0.1, 0.5, 0.4)) == pytest.approx((0.1 * 1 + 0.5 * 0) / 0.6)
    row = october.as_row()
    assert row["satisfaction_rate"] is None and row["composite"] == pytest.approx(16.7)


async def test_the_public_page_shows_figures_and_nothing_about_residents(
    db_url: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    from tests.webhook_app import start

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await say(wechat, "o_pub", "水管爆了", "1栋", "13899990000", "确认")
    page = await (await wechat.client.get("/public")).text()
    assert "阳光物业" in page and "响应率" in page and "派单" in page
    assert "13899990000" not in page and "水管爆了" not in page and "o_pub" not in page
    assert "1栋" not in page
