"""The order domain: the one place an order changes status, and what each change causes.

Chat (unit commands, resident cancel and rate), the staff console and unit portal,
the CLI and the scheduled jobs all move orders with :func:`transition` (and place
them with :func:`place_order`). Each call, in the caller's transaction:

1. checks the move against the state machine (``storage.order_status``) and writes
   the status and the ``order_events`` row (``ordering.write_transition``);
2. writes every effect the move implies, keyed by that event's id (see
   ``bot.orders.effects``), so a retried request finds them there while a second
   dispatch or acceptance gets its own:

   ============  ==========================================================
   dispatched    the unit (and co-units) told; its chase and escalation
                 clocks started; the eve-of-slot reminder (once)
   accepted …    the resident told (accepted, in service, completed,
   closed        returned, closed); 回访 after completion (solved? and a
                 rating), and a second one after FOLLOWUP_AGAIN_DAYS
   reopened      the unit told again, with the resident's words; staff too
   not_possible  the resident told kindly, with the reason; staff told
   misrouted     staff asked to re-dispatch; the resident told to wait
   return_asked  staff asked to approve the 退单; approval (→ returned)
                 tells the unit, refusal (back to where it was) too
   escalated     staff alerted (督办)
   cancelled     the unit told it need not come
   cancelled,    places of a slot still ahead released: offered to the
   closed        first on its waiting list (held for them), the rest given
                 back (``bot.orders.waitlist``)
   ============  ==========================================================

Nothing else assigns an order's status or calls the low-level write; a code-quality
test (tests/test_code_quality.py) keeps it so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.orders import effects, shared, waitlist
from bot.orders.effects import Policy
from catalog.model import Catalog
from storage import models
from storage.order_status import (
    CANCELLABLE_BY_RESIDENT,
    RESUMED_AFTER_REFUSAL,
    IllegalTransition,
    OrderStatus,
    check_transition,
)
from storage.repositories import ordering, proxy

RELEASES_PLACES = frozenset({OrderStatus.CANCELLED, OrderStatus.CLOSED, OrderStatus.NOT_POSSIBLE})
"""Moves that give an order's places in a slot back (or to the waiting list)."""
USES_PLACES = frozenset({OrderStatus.IN_SERVICE, OrderStatus.COMPLETED, OrderStatus.RATED})
"""Statuses whose place was used: closing such an order frees nothing."""

AUTO_DISPATCH = "自动派单"


async def transition(
    session: AsyncSession,
    order: models.Order,
    to: OrderStatus,
    *,
    actor: str,
    reason: str | None = None,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    unit: models.Unit | None = None,
) -> models.OrderEvent:
    """Move ``order`` to ``to`` (``IllegalTransition`` if it may not) and write what
    that causes, in the caller's transaction; the event written.

    ``actor``: ``system``, ``resident``, ``unit:<openid>``, ``staff:<user>`` …;
    ``reason``: the note kept with the event (a return's reason, a completion's
    report, a rating's comment). ``unit``: dispatch to this unit instead (改派).
    """
    current = OrderStatus(order.status)
    if unit is not None:
        if to is not OrderStatus.DISPATCHED:
            raise ValueError("only a dispatch moves an order to another unit")
        check_transition(order.code, current, to)  # before the unit is changed
        if current is OrderStatus.RETURN_ASKED:  # decide the 退单 first
            raise IllegalTransition(order.code, current, to)
        order.unit_id = unit.id
    refused = current is OrderStatus.RETURN_ASKED and to in RESUMED_AFTER_REFUSAL
    if refused and to is not await status_before_return(session, order):
        # A refused 退单 goes back to where the order was, nowhere else.
        raise IllegalTransition(order.code, current, to)
    event = await ordering.write_transition(session, order, to, actor=actor, note=reason)
    facts = dataclasses.replace(
        await effects.load_facts(session, catalog, order), event_id=event.id
    )
    if refused:
        await effects.return_refused(session, catalog, facts, reason)
    elif to is OrderStatus.DISPATCHED:
        await effects.order_placed(session, catalog, policy, facts, now)
    elif to is OrderStatus.CANCELLED:
        await effects.order_cancelled(session, catalog, facts, by_resident=actor == "resident")
    elif to is OrderStatus.ESCALATED:
        await effects.order_escalated(session, catalog, facts, reason, overdue=actor == "system")
    else:
        await effects.order_changed(session, catalog, policy, facts, to, now, note=reason)
    if to in RELEASES_PLACES and current not in USES_PLACES and order.slot_id is not None:
        await waitlist.free_places(
            session,
            catalog,
            policy,
            order.slot_id,
            ordering.places_of(order),
            cause=f"e{event.id}",
            now=now,
        )
    return event


async def status_before_return(session: AsyncSession, order: models.Order) -> OrderStatus | None:
    """The status the order had when its unit asked to return it (退单), or None."""
    before = await session.scalar(
        select(models.OrderEvent.from_status)
        .where(
            models.OrderEvent.order_id == order.id,
            models.OrderEvent.to_status == OrderStatus.RETURN_ASKED.value,
        )
        .order_by(models.OrderEvent.id.desc())
        .limit(1)
    )
    return OrderStatus(before) if before else None


async def refuse_return(
    session: AsyncSession,
    order: models.Order,
    *,
    actor: str,
    reason: str | None,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
) -> models.OrderEvent:
    """Staff do not approve a unit's 退单: the order goes back to where it was, still
    the unit's, and the unit is told (``IllegalTransition`` if none is asked)."""
    current = OrderStatus(order.status)
    back = await status_before_return(session, order)
    if current is not OrderStatus.RETURN_ASKED or back is None:
        raise IllegalTransition(order.code, current, back or OrderStatus.DISPATCHED)
    return await transition(
        session,
        order,
        back,
        actor=actor,
        reason=reason,
        catalog=catalog,
        policy=policy,
        now=now,
    )


async def reopen_by_resident(
    session: AsyncSession,
    *,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    openid: str,
    code: str,
    words: str,
) -> models.Order:
    """回访: the resident says a completed order is not solved (没解决, 还在漏): it goes
    back to the same unit with their words (``IllegalTransition`` unless it was
    completed or rated; ``ordering.OrderNotFound`` if it is not theirs)."""
    order = await ordering.resident_order(session, catalog.community_id, openid, code)
    await transition(
        session,
        order,
        OrderStatus.REOPENED,
        actor="resident",
        reason=words[:500] or "居民说还没解决",
        catalog=catalog,
        policy=policy,
        now=now,
    )
    return order


async def place_order(
    session: AsyncSession,
    *,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    item: models.Item,
    resident: models.Resident,
    answers: dict[str, Any],
    description: str = "",
    slot_id: int | None = None,
    people: int = 1,
    grid_key: str | None = None,
    message_key: str | None = None,
    placed_by: str = "resident",
    offer: int | None = None,
) -> models.Order:
    """Place an order and dispatch it to the item's unit (群众点单 → 社区派单), with
    its effects, in the caller's transaction.

    ``offer``: the waiting-list entry whose held place the resident takes up; if the
    hold is still theirs, its places are used (no more are taken for them), else
    places are taken as for anyone. Raises ``ordering.SlotFull`` when the slot
    has too few places, ``ordering.DuplicateMessage`` when another process placed the
    order of this message at the same moment. A retried message (same
    ``message_key``) returns the order it placed, with nothing written again.
    """
    held = 0
    if offer is not None and slot_id is not None:
        held = await waitlist.take_up(session, offer, resident_id=resident.id, slot_id=slot_id)
    order, new = await ordering.insert_order(
        session,
        community_id=item.community_id,
        item=item,
        resident=resident,
        answers=answers,
        description=description,
        slot_id=slot_id,
        people=people,
        held=held,
        grid_key=grid_key,
        message_key=message_key,
        placed_by=placed_by,
    )
    if not new:
        return order
    if held:
        await waitlist.link_order(session, offer, order.id)  # type: ignore[arg-type]
        if held > people and slot_id is not None:  # fewer came than were held for
            await waitlist.free_places(
                session, catalog, policy, slot_id, held - people, cause=f"o{order.id}", now=now
            )
    await dispatch_new(session, catalog, policy, order, now)
    return order


async def dispatch_new(
    session: AsyncSession, catalog: Catalog, policy: Policy, order: models.Order, now: dt.datetime
) -> None:
    """Dispatch a just-submitted order to its item's unit (自动派单)."""
    await transition(
        session,
        order,
        OrderStatus.DISPATCHED,
        actor="system",
        reason=AUTO_DISPATCH,
        catalog=catalog,
        policy=policy,
        now=now,
    )


async def cancel_by_resident(
    session: AsyncSession,
    *,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    openid: str,
    code: str,
) -> models.Order:
    """The resident calls an order off (``ordering.OrderNotFound`` if it is not
    theirs; ``IllegalTransition`` once the service has started).

    An order other households joined (我也遇到) is not called off: it is handed to the
    first of them (``shared.hand_over``), still open; ``order.resident_id`` tells
    the caller so."""
    order = await ordering.resident_order(session, catalog.community_id, openid, code)
    status = OrderStatus(order.status)
    if status not in CANCELLABLE_BY_RESIDENT:  # e.g. the unit has started the service
        raise IllegalTransition(order.code, status, OrderStatus.CANCELLED)
    if await shared.hand_over(session, order, now) is not None:
        return order
    await transition(
        session,
        order,
        OrderStatus.CANCELLED,
        actor="resident",
        reason="居民取消",
        catalog=catalog,
        policy=policy,
        now=now,
    )
    return order


async def rate(
    session: AsyncSession,
    *,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    openid: str,
    code: str,
    stars: int,
    comment: str,
) -> models.Order:
    """The resident rates a completed order (群众评单)."""
    order = await ordering.resident_order(session, catalog.community_id, openid, code)
    await transition(
        session,
        order,
        OrderStatus.RATED,
        actor="resident",
        reason=comment or None,
        catalog=catalog,
        policy=policy,
        now=now,
    )
    order.rating = stars
    order.rating_comment = comment or None
    return order


async def place_proxy_order(
    session: AsyncSession,
    *,
    catalog: Catalog,
    policy: Policy,
    now: dt.datetime,
    item_key: str,
    name: str,
    phone: str,
    building: str | None,
    slot_key: str | None,
    people: int,
    note: str,
    staff: str,
    community_id: str | None = None,
) -> tuple[models.Order, dict[str, Any]]:
    """代办: staff place an order for a resident without WeChat, through the same
    checks (``proxy.ProxyOrderError``), places and dispatch as a chat order; the order
    and a summary for people. The caller has the resident's consent (they were told
    in person what is kept): it is recorded with the order."""
    plan = await proxy.check_proxy_order(
        session,
        item_key=item_key,
        name=name,
        phone=phone,
        building=building,
        slot_key=slot_key,
        people=people,
        community_id=community_id,
    )
    try:
        order = await place_order(
            session,
            catalog=catalog,
            policy=policy,
            now=now,
            item=plan.item,
            resident=plan.resident,
            answers=plan.answers,
            description=note,
            slot_id=plan.slot_id,
            people=people,
            placed_by=f"staff:{staff}",
        )
    except ordering.SlotFull as full:
        raise proxy.slot_full(slot_key, full) from None
    # Staff told the resident at the counter what is kept and agreed it with them
    # before placing it (the form's tick, the CLI's --consent-given): recorded as
    # consent given in person, keyed by the order so it is recorded once.
    from bot.privacy import consent

    await consent.give_in_person(
        session, plan.resident, key=f"proxy:{order.code}", actor=staff, now=now
    )
    return order, plan.summary(order, slot_key=slot_key)
