"""删除我的信息: erase or anonymise what is kept about one resident, at their request.

Anonymised rather than deleted, so that 考评 figures and counts stay true: orders
keep their status, unit, item, times and rating and lose the rest
(``storage.repositories.privacy``). An order still open keeps what its unit needs to
serve it (the phone, the address, the need in the resident's words) and the
resident keeps their contact details while it is open; the request stays unfinished
until then, and the retention job (``bot.privacy.retention``) erases the rest as
soon as the order closes. The openid stays: it is how a follower is answered at all.

Chat and console call :func:`erase_resident` in their own transaction; a chat
request is keyed by its message, so a retried message erases once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.wechat.inbound import cdata
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus
from storage.repositories import privacy as repo
from storage.repositories.privacy import quoting_prefix

__all__ = ["Erasure", "KeptOrder", "erase_resident", "open_orders", "quoting_prefix"]


@dataclass(frozen=True)
class KeptOrder:
    """An order whose contact details are kept for now (it is still open)."""

    code: str
    title: str
    status: str
    """As residents and staff name it (已派单)."""


@dataclass(frozen=True)
class Erasure:
    kept: list[KeptOrder]
    """Open orders that keep the resident's contact details until they close."""
    again: bool = False
    """The same message had asked already (a retry): nothing more was done."""


def _kept(orders: list[repo.ResidentOrder], codes: set[str] | None = None) -> list[KeptOrder]:
    return [
        KeptOrder(o.code, o.title, OrderStatus(o.status).label)
        for o in orders
        if (o.status in OPEN_STATUSES if codes is None else o.code in codes)
    ]


async def erase_resident(
    session: AsyncSession,
    resident: models.Resident,
    *,
    requested_by: str,
    now: dt.datetime,
    message_key: str | None = None,
    forget_conversation: bool = True,
) -> Erasure:
    """Erase what is kept about ``resident`` except what their open orders need.

    ``requested_by``: ``resident``, or the console user (``staff:<name>``).
    ``message_key``: the chat message that confirmed it (a retry finds its request
    and does nothing more). ``forget_conversation``: also drop a half-filled form's
    answers (the chat handler clears its own conversation instead)."""
    community_id = resident.community_id
    orders = await repo.orders_of(session, resident.id)
    if message_key is not None:
        earlier = await repo.request_for_message(session, community_id, message_key)
        if earlier is not None:
            return Erasure(_kept(orders, set(earlier.kept)), again=True)
    kept = _kept(orders)
    closed = [o.id for o in orders if o.status not in OPEN_STATUSES]
    await repo.anonymise_orders(session, closed, now)
    await repo.remove_photos(session, closed, now)
    await repo.blank_follower_notes(session, resident.id)
    await repo.blank_audit_details(session, community_id, [o.code for o in orders])
    await repo.drop_subscriptions(session, resident.id)
    if resident.openid is not None:
        await repo.blank_texts_of(session, community_id, resident.openid)
        await repo.blank_notifications_to(session, community_id, resident.openid)
        await repo.blank_notifications_quoting(session, community_id, resident.openid)
        addressed = f"<ToUserName>{cdata(resident.openid)}</ToUserName>"
        await repo.forget_replies(session, community_id, addressed)
        if forget_conversation:
            await repo.forget_conversation(session, community_id, resident.openid)
    if not kept:
        await repo.clear_contact(session, [resident.id], everything=True)
    session.add(
        models.ErasureRequest(
            community_id=community_id,
            resident_id=resident.id,
            message_key=message_key,
            requested_by=requested_by,
            requested_at=now,
            kept=[o.code for o in kept],
            done_at=None if kept else now,
        )
    )
    await session.flush()
    return Erasure(kept)


async def open_orders(session: AsyncSession, resident_id: int) -> list[KeptOrder]:
    """The orders an erasure would keep for now (to say so before it is confirmed)."""
    return _kept(await repo.orders_of(session, resident_id))
