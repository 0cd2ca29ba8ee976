"""Promises kept: a freed place goes to the first on the slot's waiting list.

Residents who find a slot full may wait for it (「有空位会通知您」). When places
are freed (a cancellation, an order closed, an offer declined or run out), in the
same transaction as the change that freed them:

* each is held for the first resident still waiting whose party fits (it stays
  counted in the slot's ``booked``, so nobody else can take it), and the resident
  is told through the outbox, keyed by the entry and the cause;
* places nobody waits for are given back.

The hold lasts ``Policy.waitlist_hold_hours`` from when the offer may be sent (after
the quiet hours), never past the start of the slot. The resident takes it up by
chat (``handlers.waitlist``: 要 / 好的, or naming the service); the booking then asks
the remaining questions and uses the held place (``domain.place_order(offer=…)``).
不要了 hands it on at once; :class:`HoldRunner` hands on the holds that ran out.

Every move of an entry is conditional on its status (``storage.repositories.waitlist``):
two cancellations at once hold two places for two residents, and a place is never
both taken up and handed on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.jobs.rows import Outcomes, RowJob
from bot.orders import effects
from bot.orders.effects import Policy
from catalog.model import Catalog
from storage import models
from storage.order_status import OPEN_STATUSES
from storage.repositories import ordering
from storage.repositories import waitlist as repo

log = logging.getLogger(__name__)

RETRY_AFTER = dt.timedelta(minutes=5)
"""A hold that could not be handed on (its community not served here, a bad row) is
tried again this much later; the others go on."""


async def free_places(
    session: AsyncSession,
    catalog: Catalog,
    policy: Policy,
    slot_id: int,
    people: int,
    *,
    cause: str,
    now: dt.datetime,
) -> None:
    """``people`` places of a slot are no longer taken: hold them for the first
    ones waiting, and give back the rest. ``cause`` names what freed them (the order
    event ``e<id>``, an entry declined ``d<id>`` or run out ``x<id>``, an order that
    needed fewer than held ``o<id>``): the offer's outbox key carries it."""
    if people <= 0:
        return
    booked = await session.get(models.ItemSlot, slot_id)
    if booked is not None and booked.retired_at is None and booked.starts_at > now:
        for entry in await repo.waiting(session, slot_id):
            if people <= 0:
                break
            if entry.people > people:
                continue  # a party too large for what is free: the next one may fit
            if await _has_booked(session, entry):
                await repo.move(session, entry.id, repo.WAITING, repo.ACCEPTED)
                continue
            hold_until = min(
                policy.worktime(catalog).after_quiet_hours(now)
                + dt.timedelta(hours=policy.waitlist_hold_hours),
                booked.starts_at,
            )
            offered = await repo.move(
                session,
                entry.id,
                repo.WAITING,
                repo.OFFERED,
                offered_at=now,
                hold_until=hold_until,
                error=None,
            )
            if not offered:  # offered meanwhile by another freed place
                continue
            await _tell_offer(session, catalog, policy, entry, booked, hold_until, cause, now)
            people -= entry.people
    await ordering.release_places(session, slot_id, people)


async def _has_booked(session: AsyncSession, entry: models.WaitlistEntry) -> bool:
    """Whether the resident got into the slot some other way meanwhile."""
    found = await session.scalar(
        select(models.Order.id).where(
            models.Order.slot_id == entry.slot_id,
            models.Order.resident_id == entry.resident_id,
            models.Order.status.in_([s.value for s in OPEN_STATUSES]),
        )
    )
    return found is not None


async def _tell_offer(
    session: AsyncSession,
    catalog: Catalog,
    policy: Policy,
    entry: models.WaitlistEntry,
    booked: models.ItemSlot,
    hold_until: dt.datetime,
    cause: str,
    now: dt.datetime,
) -> None:
    from handlers import texts  # the words residents read live with the other replies

    openid = await _openid(session, entry.resident_id)
    if openid is None:
        return
    zone = ZoneInfo(catalog.document.community.timezone)
    title = await _title(session, catalog, booked.item_id)
    label = texts.slot_label(booked.starts_at.astimezone(zone), booked.location, None)
    text = texts.waitlist_offer(title, label, hold_until.astimezone(zone))
    key = f"waitlist:{entry.id}:{cause}"
    await effects.notify_resident(session, catalog, policy, openid, key, text, now)


async def _openid(session: AsyncSession, resident_id: int) -> str | None:
    return await session.scalar(
        select(models.Resident.openid).where(models.Resident.id == resident_id)
    )


async def _title(session: AsyncSession, catalog: Catalog, item_id: int) -> str:
    key, title = (
        await session.execute(
            select(models.Item.key, models.Item.title).where(models.Item.id == item_id)
        )
    ).one()
    return catalog.item(key).title if catalog.has_item(key) else str(title)


async def take_up(session: AsyncSession, entry_id: int, *, resident_id: int, slot_id: int) -> int:
    """The resident books with the place held for them: the places held, or 0 when the
    hold is no longer theirs (ran out and handed on, or another slot's)."""
    entry = await session.get(models.WaitlistEntry, entry_id, populate_existing=True)
    if entry is None or entry.resident_id != resident_id or entry.slot_id != slot_id:
        return 0
    if not await repo.move(session, entry_id, repo.OFFERED, repo.ACCEPTED):
        return 0
    return entry.people


async def link_order(session: AsyncSession, entry_id: int, order_id: int) -> None:
    await repo.move(session, entry_id, repo.ACCEPTED, repo.ACCEPTED, order_id=order_id)


async def decline(
    session: AsyncSession,
    catalog: Catalog,
    policy: Policy,
    offer: repo.Offer,
    now: dt.datetime,
) -> bool:
    """The resident does not want the place (不要了): the next in line gets it now.
    False when the hold was no longer theirs."""
    if not await repo.move(session, offer.entry_id, repo.OFFERED, repo.DECLINED):
        return False
    await free_places(
        session,
        catalog,
        policy,
        offer.slot_id,
        offer.people,
        cause=f"d{offer.entry_id}",
        now=now,
    )
    return True


class HoldRunner(RowJob[tuple[models.WaitlistEntry, str], None]):
    """Scheduled: hands on the places whose hold ran out, for every community served
    here. A :class:`~bot.jobs.rows.RowJob`: each entry is handled in its own
    savepoint; one that fails keeps its place, is tried again after ``RETRY_AFTER``
    with its error noted, and the others go on. Runs in every process: the claim
    takes entries no other process holds, and every move is conditional."""

    what = "waiting-list hold"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalogs: Callable[[str], Catalog | None],
        policy: Policy,
        clock: Clock,
        communities: Callable[[], list[str]],
        *,
        batch: int = 200,
    ) -> None:
        """``catalogs``: the live catalog of a community (None: not served here);
        ``communities``: the ids of those served here."""
        super().__init__(sessionmaker, clock, batch=batch)
        self._catalogs = catalogs
        self._policy = policy
        self._communities = communities

    def label(self, row: tuple[models.WaitlistEntry, str]) -> str:
        return str(row[0].id)

    async def claim(
        self, session: AsyncSession, now: dt.datetime, limit: int
    ) -> list[tuple[models.WaitlistEntry, str]]:
        return await repo.lapsed(session, now=now, communities=self._communities(), limit=limit)

    async def prepare(
        self,
        session: AsyncSession,
        rows: Sequence[tuple[models.WaitlistEntry, str]],
        now: dt.datetime,
    ) -> None:
        return None

    async def act(
        self,
        session: AsyncSession,
        row: tuple[models.WaitlistEntry, str],
        prepared: None,
        now: dt.datetime,
    ) -> bool:
        entry, community_id = row
        return await self._hand_on(session, entry, community_id, now)

    async def settle(
        self,
        session: AsyncSession,
        outcomes: Outcomes[tuple[models.WaitlistEntry, str]],
        now: dt.datetime,
    ) -> None:
        for (entry, _), error in outcomes.failed:
            await repo.set_aside(session, entry.id, error, now + RETRY_AFTER)

    async def _hand_on(
        self,
        session: AsyncSession,
        entry: models.WaitlistEntry,
        community_id: str,
        now: dt.datetime,
    ) -> bool:
        """False when the hold was taken up or declined meanwhile."""
        catalog = self._catalogs(community_id)
        if catalog is None:
            raise LookupError(f"community {community_id!r} is not served here")
        if not await repo.move(session, entry.id, repo.OFFERED, repo.EXPIRED):
            return False  # taken up or declined meanwhile
        openid = await _openid(session, entry.resident_id)
        if openid is not None:
            from handlers import texts

            title = await _title(session, catalog, await _item_of(session, entry.slot_id))
            await effects.notify_resident(
                session,
                catalog,
                self._policy,
                openid,
                f"waitlist-lapsed:{entry.id}",
                texts.waitlist_lapsed(title),
                now,
            )
        await free_places(
            session,
            catalog,
            self._policy,
            entry.slot_id,
            entry.people,
            cause=f"x{entry.id}",
            now=now,
        )
        return True


async def _item_of(session: AsyncSession, slot_id: int) -> int:
    item_id = await session.scalar(
        select(models.ItemSlot.item_id).where(models.ItemSlot.id == slot_id)
    )
    assert item_id is not None
    return item_id
