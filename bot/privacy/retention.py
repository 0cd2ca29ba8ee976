"""Retention: personal information is anonymised once its period has run out.

The periods are settings (``RETAIN_*_DAYS``, see :class:`Periods`). Counted from
when an order closed (its last move): its contact details and free text, and
separately its photos and places; a resident's own name, phone and building once
none of their orders holds any and they have not written for as long. Counted from
when they were written: texts that matched nothing (需求清单, 学习箱), and messages
(转人工 threads once closed, remarks, visit notes, the text of notifications sent,
the notes of households retired from a grid's list). Half-filled forms lose their
answers a day after they expired. Orders an erasure request kept
while open (``bot.privacy.erasure``) are anonymised as soon as they close, whatever
the period, and the request is then finished.

Anonymised rather than deleted (``storage.repositories.privacy``): the 考评 figures
and every count stay as they were. A run takes each step batch by batch, each batch
a transaction of its own; a row done is out of its step's query, so a run that dies
half-way leaves committed batches done and the next run goes on from there, and a
second run finds nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from storage.repositories import privacy as repo

log = logging.getLogger(__name__)

BATCH = 200
"""Rows of one transaction: short enough not to hold SQLite's write lock for long."""
FORM_GRACE = dt.timedelta(days=1)
"""How long after it expired a half-filled form's answers are kept."""
INTERVAL = 3600.0
"""Seconds between two runs of the scheduled job: periods are counted in days."""


@dataclass(frozen=True)
class Periods:
    """How long personal information is kept, in days."""

    contact: int = 180
    """An order's contact details and free text, after it closed; a resident's own
    contact details, after their last message (and none of their orders holds any)."""
    photos: int = 90
    """Photos and places sent about an order, after it closed."""
    need_texts: int = 365
    """Messages that matched no service (需求清单, 学习箱), after they were written."""
    messages: int = 365
    """转人工 threads (once closed), remarks, visit notes and notifications sent, after
    they were written; retired households' notes, after they were retired."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Periods:
        return cls(
            contact=settings.retain_contact_days,
            photos=settings.retain_photo_days,
            need_texts=settings.retain_need_text_days,
            messages=settings.retain_message_days,
        )


Due = Callable[[AsyncSession, dt.datetime], Awaitable[Select[Any] | None]]
Apply = Callable[[AsyncSession, Sequence[Any], dt.datetime], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    """One kind of anonymisation: which rows are due, and what is done to them."""

    name: str
    due: Due
    apply: Apply


def _days(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


async def _erased_orders(session: AsyncSession, now: dt.datetime) -> Select[int] | None:
    codes = await repo.codes_kept_by_erasures(session)
    return repo.kept_orders(codes) if codes else None


async def _erase_order(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
    await repo.anonymise_orders(session, ids, now)
    await repo.remove_photos(session, ids, now)


async def _clear_residents(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
    await repo.clear_contact(session, ids)


def _texts(kind: str, period: Callable[[Periods], int], periods: Periods) -> Step:
    async def due(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.texts_before(kind, _days(now, period(periods)))

    async def apply(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
        await repo.blank_texts(session, kind, ids)

    return Step(kind, due, apply)


def steps(periods: Periods) -> list[Step]:
    """Every step, in the order they run: orders before residents (a resident's
    contact details go once none of their orders holds any)."""

    async def contact(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.closed_orders_before(_days(now, periods.contact))

    async def photos(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.closed_orders_before(_days(now, periods.photos), photos=True)

    async def residents(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.idle_residents_before(_days(now, periods.contact))

    async def notifications(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.settled_notifications_before(_days(now, periods.messages))

    async def blank_notifications(
        session: AsyncSession, ids: Sequence[int], now: dt.datetime
    ) -> None:
        await repo.blank_notifications(session, ids)

    async def forms(session: AsyncSession, now: dt.datetime) -> Select[Any]:
        return repo.abandoned_forms_before(now - FORM_GRACE)

    async def forget_forms(session: AsyncSession, openids: Sequence[str], now: dt.datetime) -> None:
        await repo.forget_forms(session, openids, now - FORM_GRACE)

    async def households(session: AsyncSession, now: dt.datetime) -> Select[int]:
        return repo.retired_household_notes_before(_days(now, periods.messages))

    async def blank_households(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
        await repo.blank_household_notes(session, ids)

    return [
        Step("erased_orders", _erased_orders, _erase_order),
        Step("order_contacts", contact, repo.anonymise_orders),
        Step("order_photos", photos, repo.remove_photos),
        Step("resident_contacts", residents, _clear_residents),
        _texts("unmet_needs", lambda p: p.need_texts, periods),
        _texts("inbox_messages", lambda p: p.need_texts, periods),
        *(
            _texts(kind, lambda p: p.messages, periods)
            for kind in (
                "handoffs",
                "handoff_messages",
                "resident_remarks",
                "household_visits",
                "visit_followups",
            )
        ),
        Step("notifications", notifications, blank_notifications),
        Step("abandoned_forms", forms, forget_forms),
        Step("retired_household_notes", households, blank_households),
    ]


FINISHED = "erasures_finished"


class Retention:
    """The retention job: :meth:`run_once` anonymises what is past its period."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        periods: Periods,
        *,
        batch: int = BATCH,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._steps = steps(periods)
        self._batch = batch

    async def run_once(self, *, dry_run: bool = False) -> dict[str, int]:
        """Rows anonymised by each step (``dry_run``: what is due, nothing changed;
        each step counted as the database is now)."""
        now = self._clock.now()
        counts = {}
        for step in self._steps:
            counts[step.name] = await (self._count(step, now) if dry_run else self._run(step, now))
        async with self._sessionmaker.begin() as session:
            if dry_run:
                counts[FINISHED] = await repo.finishable_requests(session)
            else:
                counts[FINISHED] = await repo.finish_requests(session, now)
        done = ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "nothing due"
        log.info("retention%s: %s", " (dry run)" if dry_run else "", done)
        return counts

    async def _count(self, step: Step, now: dt.datetime) -> int:
        async with self._sessionmaker() as session:
            query = await step.due(session, now)
            return 0 if query is None else await repo.count(session, query)

    async def _run(self, step: Step, now: dt.datetime) -> int:
        """Batch after batch, each committed, until a batch is not full."""
        total = 0
        while True:
            async with self._sessionmaker.begin() as session:
                query = await step.due(session, now)
                if query is None:
                    return total
                ids = list(await session.scalars(query.order_by(None).limit(self._batch)))
                await step.apply(session, ids, now)
            total += len(ids)
            if len(ids) < self._batch:
                return total
