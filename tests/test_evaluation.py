"""动态考评 figures against a history computed by hand; the fairness rules (an order
inside its promise is no failure yet, a rate needs a minimum sample) on a fake clock;
the public page's figures, definitions and grid board."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.web.figures import standings
from bot.worktime import WorkTime
from catalog.loader import load_catalog
from storage import models
from storage.repositories.catalog import import_catalog
from storage.repositories.evaluation import Rules, unit_months
from tests.fake_clock import SHANGHAI, FakeClock
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


async def add_orders(
    session: AsyncSession,
    item_key: str,
    orders: list[tuple[str, int | None, list[tuple[str, str]]]],
) -> None:
    """Orders of ``item_key`` with the given histories (local times), as if they had
    been through the lifecycle."""
    item = await session.scalar(select(models.Item).where(models.Item.key == item_key))
    assert item is not None
    resident = await session.scalar(select(models.Resident).where(models.Resident.openid == "o_x"))
    if resident is None:
        resident = models.Resident(community_id="testville", openid="o_x", tags=[])
        session.add(resident)
        await session.flush()
    for code, rating, events in orders:
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


@pytest.fixture
async def catalog_imported(sessionmaker: Sessions, tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="t", source_sha256="t")


@pytest.fixture
async def history(sessionmaker: Sessions, catalog_imported: None) -> None:
    async with sessionmaker.begin() as session:
        await add_orders(session, "home-repair", HISTORY)


WORKTIME = WorkTime(SHANGHAI)
"""The reminders' calendar: 09:00-18:00 on working days."""


def rules(now: str, min_sample: int = 1) -> Rules:
    return Rules(
        now=at(now),
        deadline=WORKTIME.add_working_hours,
        complete_within_hours=27,
        min_sample=min_sample,
    )


async def test_monthly_figures_match_the_hand_computed_ones(
    sessionmaker: Sessions, history: None
) -> None:
    async with sessionmaker() as session:
        months = await unit_months(session, "testville", SHANGHAI, rules("2026-12-15 10:00"))
    figures = {f.month: f for f in months}
    november, october = figures["2026-11"], figures["2026-10"]

    # November (local time): A, B, C and E (dispatched 00:30 on the 1st, Shanghai).
    assert november.volume == 4
    # C was cancelled by the resident an hour after dispatch: in neither rate. B took
    # 30 wall-clock hours, but 15 working hours (Thursday 09:00 to Friday 15:00): in
    # time for a 24-working-hour promise.
    assert november.response_sample == 3 and november.response_rate == 1.0
    assert november.resolution_sample == 3  # E was never completed: past its deadline
    assert november.resolution_rate == pytest.approx(2 / 3)  # A and B
    assert november.satisfaction_rate == pytest.approx(1 / 2)  # A rated 5, B rated 3
    assert november.avg_accept_hours == pytest.approx((2 + 30 + 0.5) / 3)
    assert november.avg_complete_hours == pytest.approx((24 + 48) / 2)
    assert november.composite((0.1, 0.5, 0.4)) == pytest.approx(0.1 * 1 + 0.5 * 2 / 3 + 0.4 * 0.5)
    assert november.pending == 0

    # October: D only; nothing rated, so satisfaction is left out of the composite.
    assert october.volume == 1 and october.response_rate == 1.0
    assert october.resolution_rate == 0.0 and october.satisfaction_rate is None
    assert october.composite((0.1, 0.5, 0.4)) == pytest.approx((0.1 * 1 + 0.5 * 0) / 0.6)
    row = october.as_row()
    assert row["satisfaction_rate"] is None and row["composite"] == pytest.approx(16.7)


async def set_promise(session: AsyncSession, unit: str, hours: float) -> None:
    found = await session.scalar(select(models.Unit).where(models.Unit.key == unit))
    assert found is not None
    found.accept_within_hours = hours


async def test_an_order_inside_its_promise_is_not_a_failure_until_the_promise_runs_out(
    sessionmaker: Sessions, catalog_imported: None
) -> None:
    """A promise of 8 working hours: an order an hour old, or one dispatched on Friday
    afternoon and looked at on Sunday, is pending; once the promise has run out on the
    working calendar (Monday 15:00 for Friday's), the unaccepted order is a failure."""
    async with sessionmaker.begin() as session:
        await set_promise(session, "property", 8)
        await add_orders(
            session,
            "home-repair",
            [("F00001", None, [("2026-12-04 16:00", "dispatched")])],  # Friday
        )

    async def figures(now: str) -> tuple[int, int, int, float | None]:
        async with sessionmaker() as session:
            (month,) = await unit_months(session, "testville", SHANGHAI, rules(now))
        return month.response_sample, month.resolution_sample, month.pending, month.response_rate

    # Sunday noon: Friday's order is 44 wall-clock hours old but 2 working hours.
    assert await figures("2026-12-06 12:00") == (0, 0, 1, None)
    async with sessionmaker.begin() as session:
        await add_orders(
            session, "home-repair", [("M00001", None, [("2026-12-07 10:00", "dispatched")])]
        )
    # Monday 11:00: the new one is an hour old; neither is a failure, no 0.0 %.
    assert await figures("2026-12-07 11:00") == (0, 0, 2, None)
    # Monday 15:01: Friday's 8 working hours ran out at 15:00.
    assert await figures("2026-12-07 15:01") == (1, 0, 2, 0.0)
    # Monday 18:01: the Monday order's ran out at 18:00; both are still inside the
    # three working days to complete.
    assert await figures("2026-12-07 18:01") == (2, 0, 2, 0.0)
    # Wednesday 17:00: Friday's 27 working hours to complete ran out at 16:00;
    # Monday's run to Thursday 10:00.
    assert await figures("2026-12-09 17:00") == (2, 1, 1, 0.0)


async def test_an_order_accepted_in_time_counts_at_once(
    sessionmaker: Sessions, catalog_imported: None
) -> None:
    async with sessionmaker.begin() as session:
        dispatched = ("2026-12-07 10:00", "dispatched")
        await add_orders(
            session,
            "home-repair",
            [
                ("Q00001", None, [dispatched, ("2026-12-07 10:30", "accepted")]),
                ("Q00002", None, [dispatched, ("2026-12-07 10:10", "cancelled")]),
            ],
        )
    async with sessionmaker() as session:
        (month,) = await unit_months(session, "testville", SHANGHAI, rules("2026-12-07 11:00"))
    # Accepted: decided, in time. Cancelled by the resident inside the promise: in no
    # rate, and not pending either once the promise is out.
    assert month.response_sample == 1 and month.response_rate == 1.0
    assert month.resolution_sample == 0 and month.pending == 1


def orders_of(
    prefix: str, count: int, day: str = "2026-11-02"
) -> list[tuple[str, int | None, list[tuple[str, str]]]]:
    return [
        (
            f"{prefix}{n:05d}",
            5,
            [
                (f"{day} 10:00", "dispatched"),
                (f"{day} 10:30", "accepted"),
                (f"{day} 15:00", "completed"),
                (f"{day} 16:00", "rated"),
            ],
        )
        for n in range(count)
    ]


async def test_a_unit_with_two_orders_shows_too_few_and_is_not_ranked(
    sessionmaker: Sessions, catalog_imported: None
) -> None:
    """Two perfect orders would top the ranking at 100 %; with a minimum of five they
    give no rate, and a unit with five less perfect ones is ranked first."""
    async with sessionmaker.begin() as session:
        await add_orders(session, "legal-consult", orders_of("L", 2))
        five = orders_of("P", 5)
        five[0] = (
            "P99999",
            2,
            [
                ("2026-11-02 10:00", "dispatched"),
                ("2026-11-05 10:00", "accepted"),
                ("2026-11-05 11:00", "rated"),
            ],
        )
        await add_orders(session, "home-repair", five)
    async with sessionmaker() as session:
        months = await unit_months(
            session, "testville", SHANGHAI, rules("2026-12-15 10:00", min_sample=5)
        )
    by_unit = {m.unit: m for m in months}
    law, property_ = by_unit["law"], by_unit["property"]
    assert law.volume == 2 and law.response_sample == 2
    assert law.response_rate is None and law.resolution_rate is None
    assert law.satisfaction_rate is None and not law.ranked
    assert law.as_row()["composite"] is None
    assert property_.ranked and property_.response_rate == pytest.approx(4 / 5)

    table = standings(months, ["2026-11"], (0.1, 0.5, 0.4))
    assert [(s.place, s.row["unit"]) for s in table] == [(1, "property"), (None, "law")]


async def test_the_evaluation_page_ranks_and_draws_without_a_script(
    db_url: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Over HTTP: the 样本不足 unit has no place, the charts are inline SVG with
    drawn lines (trend) or bars (one month), nothing is loaded from elsewhere."""
    from tests.test_console import add_user, login
    from tests.webhook_app import start

    clock = FakeClock.at("2026-12-15 10:00")
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path), clock=clock)
    sessions = wechat.client.app[keys.SESSIONMAKER]
    async with sessions.begin() as session:
        await add_orders(session, "legal-consult", orders_of("L", 2))
        await add_orders(session, "home-repair", orders_of("P", 5))
        await add_orders(session, "home-repair", orders_of("R", 6, day="2026-12-01"))
    await add_user(wechat, "staff1", "staff")
    browser = await login(wechat, "staff1")
    page = await (await browser.get("/console/evaluation?months=3")).text()
    ranking = page.split('class="figures ranking"')[1].split("</table>")[0]
    assert "<td>1</td><td>阳光物业</td>" in ranking
    assert "<td>样本不足</td><td>共建律师事务所</td>" in ranking
    assert page.count("<svg") == 4 and "<path" in page and "<script" not in page
    assert "http" not in page.split("<svg", 1)[1].split("</svg>")[0].replace(
        "http://www.w3.org", ""
    )
    one = await (await browser.get("/console/evaluation?months=1&end=2026-11")).text()
    assert one.count("<svg") == 1 and "<rect" in one and "样本不足" in one
    await browser.close()


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


async def test_the_public_page_shows_no_failure_for_an_order_minutes_old(
    db_url: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Ordered through the webhook a moment ago: the 公示 page showed 响应率 0.0% /
    解决率 0.0%. Now: one order 未到期, no rate, and how each rate is computed. Once
    its promises have run out (the order aged by ten days), it counts as a failure.

    (Order events are stamped by the database's clock, not the app's, so the order is
    aged in the database rather than by a fake clock.)"""
    from tests.webhook_app import start

    wechat = await start(
        aiohttp_client, db_url, catalog_path=write_catalog(tmp_path), evaluation_min_sample=1
    )
    await say(wechat, "o_pub", "水管爆了", "1栋", "13899990000", "确认")

    async def property_figures() -> str:
        page = await (await wechat.client.get("/public")).text()
        return page.split("<h3>阳光物业")[1].split("</table>")[0]

    card = await property_figures()
    assert "0.0%" not in card, card
    assert re.search(r"<td>\d{4}-\d\d</td><td>1</td><td>1</td>", card), card  # 1 单, 1 未到期
    assert card.count("样本不足") == 3, card
    page = await (await wechat.client.get("/public")).text()
    assert "响应率 = 按时接单的单数" in page and "工作小时" in page

    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        for event in await session.scalars(select(models.OrderEvent)):
            event.at -= dt.timedelta(days=10)
    card = await property_figures()
    assert "<td>1</td><td>0</td>" in card, card  # nothing pending any more
    assert '0.0%<span class="sample">1单</span>' in card, card  # not accepted in time
