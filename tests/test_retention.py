"""The retention job on a database seeded with orders and texts of various ages:
exactly those past their period are anonymised, the figures do not move, a second
run changes nothing, and a run that fails between batches is completed by the next."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cli import main
from bot.config import ConfigError, load_settings
from bot.privacy.kept import kept_about
from bot.privacy.retention import Periods, Retention
from storage import models
from storage.engine import create_engine, create_sessionmaker
from storage.repositories.evaluation import Rules, unit_months
from tests.fake_clock import SHANGHAI, FakeClock

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "c1"
NOW = "2027-06-30 10:00"
PERIODS = Periods(contact=180, photos=90, need_texts=365, messages=365)


class Seed:
    """Rows of one community, written with the times a test gives."""

    def __init__(self, session: AsyncSession, now: dt.datetime) -> None:
        self.session = session
        self.now = now
        self.item_id = 0
        self.unit_id = 0

    def ago(self, days: float) -> dt.datetime:
        return self.now - dt.timedelta(days=days)

    async def community(self) -> None:
        self.session.add(models.Community(id=COMMUNITY, name="测试社区"))
        await self.session.flush()
        unit = models.Unit(community_id=COMMUNITY, key="u", name="阳光物业", kind="property")
        self.session.add(unit)
        await self.session.flush()
        item = models.Item(
            community_id=COMMUNITY,
            key="repair",
            unit_id=unit.id,
            title="水电维修",
            mode="点单",
            category="维修",
        )
        self.session.add(item)
        await self.session.flush()
        self.unit_id, self.item_id = unit.id, item.id

    async def resident(self, openid: str, phone: str, wrote_days_ago: float) -> models.Resident:
        row = models.Resident(
            community_id=COMMUNITY,
            openid=openid,
            name="王阿姨",
            phone=phone,
            building="3栋2单元",
            tags=[],
            created_at=self.ago(500),
            last_message_at=self.ago(wrote_days_ago),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def order(
        self, code: str, resident: models.Resident, status: str, days_ago: float
    ) -> None:
        """Placed, dispatched and accepted 400 days ago, then ``status`` ``days_ago``."""
        order = models.Order(
            community_id=COMMUNITY,
            code=code,
            item_id=self.item_id,
            unit_id=self.unit_id,
            resident_id=resident.id,
            status=status,
            answers={"building": "3栋2单元", "phone": resident.phone, "people": 2},
            description="楼上漏水",
            rating=4 if status == "rated" else None,
            rating_comment="师傅很好" if status == "rated" else None,
            created_at=self.ago(400),
        )
        self.session.add(order)
        await self.session.flush()
        history = [("submitted", 400), ("dispatched", 400), ("accepted", 399.9)]
        if status not in ("dispatched", "accepted"):
            history.append((status, days_ago))
        for n, (to, days) in enumerate(history):
            self.session.add(
                models.OrderEvent(
                    order_id=order.id,
                    at=self.ago(days),
                    actor="resident",
                    from_status=history[n - 1][0] if n else None,
                    to_status=to,
                    note="电话13800000000",
                )
            )
        self.session.add(
            models.OrderAttachment(
                order_id=order.id,
                message_key=f"photo-{code}",
                kind="image",
                data={"pic_url": "http://x/leak.jpg", "media_id": "m"},
                created_at=self.ago(400),
            )
        )

    def texts(self, openid: str, days_ago: float) -> None:
        at = self.ago(days_ago)
        key = f"{openid}-{days_ago}"
        self.session.add_all(
            [
                models.UnmetNeed(
                    community_id=COMMUNITY,
                    openid=openid,
                    message_key=key,
                    text="想找人陪我去医院",
                    normalized="想找人陪我去医院",
                    catalog_version="v",
                    created_at=at,
                ),
                models.InboxMessage(
                    community_id=COMMUNITY,
                    openid=openid,
                    message_key=key,
                    text="修一下那个",
                    normalized="修一下那个",
                    reason="none",
                    catalog_version="v",
                    created_at=at,
                ),
                models.ResidentRemark(
                    community_id=COMMUNITY,
                    openid=openid,
                    message_key=key,
                    kind="complaint",
                    text="太吵了",
                    created_at=at,
                ),
            ]
        )


async def seed(sessionmaker: Sessions, now: dt.datetime) -> None:
    async with sessionmaker.begin() as session:
        rows = Seed(session, now)
        await rows.community()
        old = await rows.resident("o_old", "13811110000", wrote_days_ago=200)
        recent = await rows.resident("o_recent", "13822220000", wrote_days_ago=10)
        gone = await rows.resident("o_gone", "13833330000", wrote_days_ago=300)
        await rows.order("AAAAAA", old, "rated", days_ago=200)  # contact and photos
        await rows.order("BBBBBB", old, "closed", days_ago=120)  # photos only
        await rows.order("CCCCCC", recent, "cancelled", days_ago=30)  # nothing yet
        await rows.order("DDDDDD", old, "accepted", days_ago=400)  # open: kept
        await rows.order("EEEEEE", recent, "not_possible", days_ago=181)  # both
        await rows.order("FFFFFF", gone, "completed", days_ago=250)  # both; then the resident
        await rows.order("GGGGGG", recent, "completed", days_ago=179)  # photos only
        rows.texts("o_recent", days_ago=366)  # past the year
        rows.texts("o_recent", days_ago=300)
        for days, status in ((400, "closed"), (400, "open"), (100, "closed")):
            handoff = models.Handoff(
                community_id=COMMUNITY,
                openid="o_recent",
                message_key=f"h{days}{status}",
                text="我家电话13822220000",
                status=status,
                created_at=rows.ago(days),
            )
            session.add(handoff)
            await session.flush()
            session.add(
                models.HandoffMessage(
                    handoff_id=handoff.id, author="resident", text="还没人来", at=rows.ago(days)
                )
            )


async def state(sessionmaker: Sessions) -> dict[str, Any]:
    """What the job may have changed, as a test compares it."""
    async with sessionmaker() as session:
        orders = (await session.scalars(select(models.Order).order_by(models.Order.code))).all()
        photos = {a.order_id: a.data for a in await session.scalars(select(models.OrderAttachment))}
        notes = {e.order_id for e in await session.scalars(select(models.OrderEvent)) if e.note}
        residents = {r.openid: r.phone for r in await session.scalars(select(models.Resident))}
        texts = {
            name: sorted(bool(row.text) for row in await session.scalars(select(model)))
            for name, model in (
                ("needs", models.UnmetNeed),
                ("inbox", models.InboxMessage),
                ("remarks", models.ResidentRemark),
                ("handoffs", models.Handoff),
                ("messages", models.HandoffMessage),
            )
        }
        figures = [
            m.as_row()
            for m in await unit_months(
                session, COMMUNITY, SHANGHAI, Rules(now=dt.datetime(2027, 7, 1, tzinfo=dt.UTC))
            )
        ]
    return {
        "contact": sorted(o.code for o in orders if o.contact_removed_at is not None),
        "photos": sorted(o.code for o in orders if o.photos_removed_at is not None),
        "answers": {o.code: o.answers for o in orders},
        "described": sorted(o.code for o in orders if o.description),
        "rated": {o.code: (o.status, o.rating) for o in orders},
        "with_photo": sorted(o.code for o in orders if photos[o.id]),
        "noted": sorted(o.code for o in orders if o.id in notes),
        "residents": residents,
        "texts": texts,
        "figures": figures,
    }


EXPECTED_COUNTS = {
    "erased_orders": 0,
    "order_contacts": 3,
    "order_photos": 5,
    "resident_contacts": 1,
    "unmet_needs": 1,
    "inbox_messages": 1,
    "handoffs": 1,
    "handoff_messages": 1,
    "resident_remarks": 1,
    "household_visits": 0,
    "visit_followups": 0,
    "notifications": 0,
    "abandoned_forms": 0,
    "retired_household_notes": 0,
    "erasures_finished": 0,
}
NOTHING = dict.fromkeys(EXPECTED_COUNTS, 0)


def check_anonymised(after: dict[str, Any], before: dict[str, Any]) -> None:
    """Exactly the rows past their period lost their personal information."""
    anonymised = ["AAAAAA", "EEEEEE", "FFFFFF"]
    assert after["contact"] == anonymised
    assert after["photos"] == ["AAAAAA", "BBBBBB", "EEEEEE", "FFFFFF", "GGGGGG"]
    assert after["with_photo"] == ["CCCCCC", "DDDDDD"]
    assert after["described"] == after["noted"] == ["BBBBBB", "CCCCCC", "DDDDDD", "GGGGGG"]
    for code, answers in after["answers"].items():
        assert answers == ({"people": 2} if code in anonymised else before["answers"][code])
    # The resident whose orders are all anonymised and who has not written for 300
    # days loses the phone; the one with an open order keeps it.
    assert after["residents"] == {**before["residents"], "o_gone": None}
    assert after["texts"] == {
        "needs": [False, True],
        "inbox": [False, True],
        "remarks": [False, True],
        "handoffs": [False, True, True],  # the open thread keeps its text
        "messages": [False, True, True],
    }
    # The figures and the ratings are what they were.
    assert after["figures"] == before["figures"] and after["figures"]
    assert after["rated"] == before["rated"]


async def test_retention_anonymises_exactly_what_is_past_its_period_once(
    sessionmaker: Sessions,
) -> None:
    clock = FakeClock.at(NOW)
    await seed(sessionmaker, clock.now())
    before = await state(sessionmaker)
    job = Retention(sessionmaker, clock, PERIODS, batch=2)

    due = await job.run_once(dry_run=True)
    assert due["order_contacts"] == 3 and due["order_photos"] == 5
    assert await state(sessionmaker) == before  # a dry run changes nothing

    assert await job.run_once() == EXPECTED_COUNTS
    after = await state(sessionmaker)
    check_anonymised(after, before)
    assert await job.run_once() == NOTHING  # a second run: nothing more
    assert await state(sessionmaker) == after

    async with sessionmaker() as session:
        old = await session.scalar(select(models.Resident).where(models.Resident.openid == "o_old"))
        assert old is not None
        kept = await kept_about(session, COMMUNITY, old.id, periods=PERIODS)
    assert kept is not None and kept.phone == "13811110000"
    assert [o.code for o in kept.open_orders] == ["DDDDDD"]
    assert [c.order.code for c in kept.closed_orders] == ["BBBBBB"]
    assert kept.anonymised_orders == 1


async def test_a_run_that_fails_between_batches_is_completed_by_the_next(
    engine: AsyncEngine, sessionmaker: Sessions
) -> None:
    clock = FakeClock.at(NOW)
    await seed(sessionmaker, clock.now())
    before = await state(sessionmaker)
    updates = 0

    def fail_the_second_batch(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        nonlocal updates
        if statement.lstrip().upper().startswith("UPDATE ORDERS"):
            updates += 1
            if updates == 2:
                raise RuntimeError("the machine went down")

    event.listen(engine.sync_engine, "before_cursor_execute", fail_the_second_batch)
    job = Retention(sessionmaker, clock, PERIODS, batch=1)
    with pytest.raises(Exception, match="the machine went down"):
        await job.run_once()
    event.remove(engine.sync_engine, "before_cursor_execute", fail_the_second_batch)
    halfway = await state(sessionmaker)
    assert len(halfway["contact"]) == 1  # the first batch was committed

    rerun = await job.run_once()
    assert rerun == {**EXPECTED_COUNTS, "order_contacts": 2}
    check_anonymised(await state(sessionmaker), before)
    assert await job.run_once() == NOTHING


async def test_retention_clears_quoted_words_forms_household_notes_and_proxy_names(
    sessionmaker: Sessions,
) -> None:
    clock = FakeClock.at(NOW)
    async with sessionmaker.begin() as session:
        rows = Seed(session, clock.now())
        await rows.community()
        proxied = await rows.resident("o_zhang", "13844440000", wrote_days_ago=400)
        await rows.order("AAAAAA", proxied, "closed", days_ago=200)
        session.add(
            models.AuditEntry(
                community_id=COMMUNITY,
                actor="staff:t",
                action="proxy_order",
                target="AAAAAA",
                detail="张奶奶",
            )
        )
        for n, (status, days) in enumerate((("sent", 400), ("sent", 10), ("pending", 400))):
            session.add(
                models.OutboxMessage(
                    community_id=COMMUNITY,
                    key=f"said:o_zhang:emergency:{n}:staff",
                    channel="log",
                    target="staff",
                    payload={"text": "居民原话：我家3栋2单元煤气泄漏了"},
                    status=status,
                    created_at=rows.ago(days),
                )
            )
        for openid, expired in (("o_gone", 2), ("o_busy", -0.01)):  # -: expires later
            session.add(
                models.ConversationState(
                    community_id=COMMUNITY,
                    openid=openid,
                    state="form",
                    data={"phone": "13855550000"},
                    expires_at=rows.ago(expired),
                )
            )
        for room, retired in (("501", 400), ("502", 10), ("503", None)):
            session.add(
                models.Household(
                    community_id=COMMUNITY,
                    grid_key="g1",
                    building="3栋",
                    unit="2",
                    room=room,
                    notes="独居老人 儿子13866660000",
                    address_key=f"3-2-{room}",
                    bare_key=f"3-2-{room}",
                    retired_at=None if retired is None else rows.ago(retired),
                )
            )

    counts = await Retention(sessionmaker, clock, PERIODS, batch=2).run_once()
    assert (counts["notifications"], counts["abandoned_forms"]) == (1, 1)
    assert counts["retired_household_notes"] == 1
    async with sessionmaker() as session:
        audit = await session.scalar(select(models.AuditEntry.detail))
        texts = await session.execute(
            select(models.OutboxMessage.status, models.OutboxMessage.payload).order_by(
                models.OutboxMessage.id
            )
        )
        forms = await session.execute(
            select(models.ConversationState.openid, models.ConversationState.data).order_by(
                models.ConversationState.openid
            )
        )
        notes = await session.execute(
            select(models.Household.room, models.Household.notes).order_by(models.Household.room)
        )
        assert audit is None  # the proxy resident's name went with the order's details
        assert [(status, bool(p["text"])) for status, p in texts] == [
            ("sent", False),
            ("sent", True),  # within the period
            ("pending", True),  # still to be sent
        ]
        assert [(openid, bool(data)) for openid, data in forms] == [
            ("o_busy", True),
            ("o_gone", False),
        ]
        assert [(room, bool(n)) for room, n in notes] == [
            ("501", False),
            ("502", True),
            ("503", True),
        ]
    assert set((await Retention(sessionmaker, clock, PERIODS).run_once()).values()) == {0}


async def _seed_at(url: str, now: dt.datetime) -> None:
    engine = create_engine(url)
    try:
        await seed(create_sessionmaker(engine), now)
    finally:
        await engine.dispose()


def test_the_command_reports_what_is_due_and_what_it_anonymised(db_url: str) -> None:
    asyncio.run(_seed_at(db_url, dt.datetime.now(dt.UTC)))
    env = {"DATABASE_URL": db_url, "RETAIN_PHOTO_DAYS": "90"}
    dry = CliRunner().invoke(main, ["privacy", "retention", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "order_contacts: 3 due" in dry.output and "order_photos: 5 due" in dry.output
    done = CliRunner().invoke(main, ["privacy", "retention"], env=env)
    assert "order_contacts: 3 anonymised" in done.output
    assert "resident_contacts: 1 anonymised" in done.output
    again = CliRunner().invoke(main, ["privacy", "retention"], env=env)
    assert "order_contacts: 0 anonymised" in again.output


@pytest.mark.parametrize("value", ["0", "4000", "half a year"])
def test_a_retention_period_out_of_range_names_the_variable(
    clean_env: object, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RETAIN_CONTACT_DAYS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "RETAIN_CONTACT_DAYS" in str(caught.value)
