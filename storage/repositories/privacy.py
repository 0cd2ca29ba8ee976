"""What anonymising personal information does to each table, and which rows are due.

Anonymised, not deleted: a row keeps what the figures count (an order's status,
unit, item, times and rating; that a need was raised, a person asked for, a visit
made) and loses what says who someone is or what they said in their own words:
contact details, addresses, free text, photos and places. Every update leaves its row
outside the query that found it (a marker set, a text emptied), so running the same
step again finds nothing more. The rules (periods, who asked) are ``bot.privacy``'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.schema import SLOT_QUESTION
from storage import models
from storage.order_status import OPEN_STATUSES, OrderStatus

OPEN = tuple(sorted(s.value for s in OPEN_STATUSES))
CLOSED = tuple(sorted(s.value for s in OrderStatus if s not in OPEN_STATUSES))
KEPT_ANSWERS = frozenset({"people", SLOT_QUESTION})
"""Answers an anonymised order keeps: how many came and which slot (what was booked);
its phone, address, name and every free answer go."""
SETTLED_OUTBOX = ("sent", "failed", "unknown")
"""Notifications no longer to be sent: their text may go (a pending one is still due)."""

Order = models.Order
Resident = models.Resident


def last_activity() -> ColumnElement[dt.datetime]:
    """When an order last moved (its latest event; its creation if it has none)."""
    latest = (
        select(func.max(models.OrderEvent.at))
        .where(models.OrderEvent.order_id == Order.id)
        .scalar_subquery()
    )
    return func.coalesce(latest, Order.created_at)


def closed_orders_before(cutoff: dt.datetime, *, photos: bool = False) -> Select[int]:
    """Closed orders that last moved before ``cutoff`` and still hold their contact
    details (``photos``: their photos and places)."""
    query = select(Order.id).where(Order.status.in_(CLOSED), last_activity() < cutoff)
    if photos:
        return query.where(
            Order.photos_removed_at.is_(None),
            exists().where(models.OrderAttachment.order_id == Order.id),
        )
    return query.where(Order.contact_removed_at.is_(None))


def kept_orders(codes: Sequence[str]) -> Select[int]:
    """Of the orders an erasure kept while they were open (their ``codes``), those
    closed since and not anonymised yet."""
    return select(Order.id).where(
        Order.code.in_(list(codes)),
        Order.status.in_(CLOSED),
        or_(Order.contact_removed_at.is_(None), Order.photos_removed_at.is_(None)),
    )


async def codes_kept_by_erasures(session: AsyncSession) -> list[str]:
    """The orders unfinished erasure requests kept (few: requests finish when they close)."""
    requests = await session.scalars(unfinished_requests())
    return sorted({code for request in requests for code in request.kept})


def _anonymised_answers(answers: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (answers or {}).items() if k in KEPT_ANSWERS}


REDACTED = "（已删除）"


async def anonymise_orders(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
    """Orders lose their contact details and free text: the answers but the number of
    people and the slot, the need in the resident's words, the rating's comment, the
    notes of their history, what those who joined them said (我也遇到), the remarks
    about them, the text of their settled notifications, and the answers and the
    resident's contact details quoted in notifications still to be sent."""
    if not ids:
        return
    ids = list(ids)
    rows = (
        await session.execute(
            select(Order.id, Order.answers, Resident.phone, Resident.name, Resident.building)
            .join(Resident, Resident.id == Order.resident_id)
            .where(Order.id.in_(ids))
        )
    ).all()
    codes = (
        await session.execute(select(Order.community_id, Order.code).where(Order.id.in_(ids)))
    ).all()
    for community_id in {community for community, _ in codes}:
        here = [code for community, code in codes if community == community_id]
        await blank_audit_details(session, community_id, here)
    await session.execute(
        update(Order),
        [
            {
                "id": order_id,
                "answers": _anonymised_answers(answers),
                "description": "",
                "rating_comment": None,
                "contact_removed_at": now,
            }
            for order_id, answers, *_ in rows
        ],
    )
    await session.execute(
        update(models.OrderEvent).where(models.OrderEvent.order_id.in_(ids)).values(note=None)
    )
    await session.execute(
        update(models.OrderFollower)
        .where(models.OrderFollower.order_id.in_(ids))
        .values(building=None, note=None)
    )
    await session.execute(
        update(models.ResidentRemark).where(models.ResidentRemark.order_id.in_(ids)).values(text="")
    )
    await _blank_notifications(session, models.OutboxMessage.order_id.in_(ids))
    quoted = {
        order_id: [
            str(v)
            for k, v in [*(answers or {}).items(), ("p", phone), ("n", name), ("b", building)]
            if k not in KEPT_ANSWERS and isinstance(v, str) and len(v) >= 2
        ]
        for order_id, answers, phone, name, building in rows
    }
    await _redact_pending(session, quoted)


async def _redact_pending(
    session: AsyncSession,
    quoted: dict[int, list[str]],
    which: ColumnElement[bool] | None = None,
) -> None:
    """Notifications of these orders still to be sent (``which`` of them) lose the
    words quoted from the resident (longest first, so a phone inside a longer answer
    goes whole)."""
    outbox = models.OutboxMessage
    pending = (
        await session.execute(
            select(outbox.id, outbox.order_id, outbox.payload).where(
                outbox.order_id.in_(list(quoted)),
                outbox.status == "pending",
                *([] if which is None else [which]),
            )
        )
    ).all()
    changed = []
    for row_id, order_id, payload in pending:
        text = str((payload or {}).get("text") or "")
        redacted = text
        for word in sorted(quoted.get(order_id, []), key=len, reverse=True):
            redacted = redacted.replace(word, REDACTED)
        if redacted != text:
            changed.append({"id": row_id, "payload": {**payload, "text": redacted}})
    if changed:
        await session.execute(update(outbox), changed)


async def _blank_notifications(session: AsyncSession, which: ColumnElement[bool]) -> None:
    """Settled notifications matching ``which`` lose their text."""
    outbox = models.OutboxMessage
    sent = (
        await session.execute(
            select(outbox.id, outbox.payload).where(which, outbox.status.in_(SETTLED_OUTBOX))
        )
    ).all()
    changed = [
        {"id": row_id, "payload": {**payload, "text": ""}}
        for row_id, payload in sent
        if (payload or {}).get("text")
    ]
    if changed:
        await session.execute(update(outbox), changed)


async def remove_photos(session: AsyncSession, ids: Sequence[int], now: dt.datetime) -> None:
    """Orders lose the photos and places sent about them (the rows stay, empty, so a
    count of what was sent stays true)."""
    if not ids:
        return
    ids = list(ids)
    await session.execute(
        update(models.OrderAttachment)
        .where(models.OrderAttachment.order_id.in_(ids))
        .values(data={})
    )
    await session.execute(update(Order).where(Order.id.in_(ids)).values(photos_removed_at=now))


HOLDS_CONTACT = or_(
    Resident.phone.is_not(None), Resident.name.is_not(None), Resident.building.is_not(None)
)


def idle_residents_before(cutoff: dt.datetime) -> Select[int]:
    """Residents holding contact details who last wrote (or, without WeChat, were
    created) before ``cutoff`` and none of whose orders still holds contact details."""
    return select(Resident.id).where(
        HOLDS_CONTACT,
        func.coalesce(Resident.last_message_at, Resident.created_at) < cutoff,
        ~exists().where(Order.resident_id == Resident.id, Order.contact_removed_at.is_(None)),
    )


async def clear_contact(
    session: AsyncSession, ids: Sequence[int], *, everything: bool = False
) -> None:
    """Residents lose their name, phone and building; ``everything`` (an erasure):
    their grid and tags too (独居老人 and the like)."""
    if not ids:
        return
    values: dict[str, Any] = {"name": None, "phone": None, "building": None}
    if everything:
        values |= {"grid_key": None, "tags": []}
    await session.execute(update(Resident).where(Resident.id.in_(list(ids))).values(**values))


@dataclass(frozen=True)
class Texts:
    """A table of texts people wrote: its text column, when a row was written, what an
    anonymised row is set to, which rows may be (``ready``), and whose they are."""

    model: Any
    text: str
    at: str
    blank: dict[str, Any]
    ready: Callable[[], list[ColumnElement[bool]]] = field(default=lambda: [])
    of: Callable[[str, str], ColumnElement[bool]] | None = None
    """``of(community_id, openid)``: the rows of one resident."""

    def column(self, name: str) -> Any:
        return getattr(self.model, name)


def _closed_handoffs() -> list[ColumnElement[bool]]:
    return [models.Handoff.status != "open"]


def _in_closed_handoff() -> list[ColumnElement[bool]]:
    closed = select(models.Handoff.id).where(models.Handoff.status != "open")
    return [models.HandoffMessage.handoff_id.in_(closed)]


def _messages_of(community_id: str, openid: str) -> ColumnElement[bool]:
    theirs = select(models.Handoff.id).where(
        models.Handoff.community_id == community_id, models.Handoff.openid == openid
    )
    return models.HandoffMessage.handoff_id.in_(theirs)


def _by_openid(model: Any) -> Callable[[str, str], ColumnElement[bool]]:
    def of(community_id: str, openid: str) -> ColumnElement[bool]:
        return (model.community_id == community_id) & (model.openid == openid)  # type: ignore[no-any-return]

    return of


TEXTS: dict[str, Texts] = {
    "unmet_needs": Texts(
        models.UnmetNeed,
        "text",
        "created_at",
        {"text": "", "normalized": "", "openid": None, "candidates": []},
        of=_by_openid(models.UnmetNeed),
    ),
    "inbox_messages": Texts(
        models.InboxMessage,
        "text",
        "created_at",
        {"text": "", "normalized": "", "openid": ""},
        of=_by_openid(models.InboxMessage),
    ),
    "resident_remarks": Texts(
        models.ResidentRemark,
        "text",
        "created_at",
        {"text": ""},
        of=_by_openid(models.ResidentRemark),
    ),
    "handoffs": Texts(
        models.Handoff,
        "text",
        "created_at",
        {"text": ""},
        _closed_handoffs,
        _by_openid(models.Handoff),
    ),
    "handoff_messages": Texts(
        models.HandoffMessage, "text", "at", {"text": ""}, _in_closed_handoff, _messages_of
    ),
    "household_visits": Texts(models.HouseholdVisit, "note", "created_at", {"note": ""}),
    "visit_followups": Texts(
        models.VisitFollowUp,
        "note",
        "created_at",
        {"note": ""},
        lambda: [models.VisitFollowUp.status == "done"],
    ),
}
"""Free texts, by table. Visits' notes are the grid worker's about a household (not
linked to a resident), so only time removes them."""


def texts_before(kind: str, cutoff: dt.datetime) -> Select[int]:
    """Rows of ``kind`` written before ``cutoff`` whose text is still there."""
    table = TEXTS[kind]
    return select(table.column("id")).where(
        table.column(table.text) != "", table.column(table.at) < cutoff, *table.ready()
    )


async def blank_texts(session: AsyncSession, kind: str, ids: Sequence[int]) -> None:
    if ids:
        table = TEXTS[kind]
        await session.execute(
            update(table.model).where(table.column("id").in_(list(ids))).values(**table.blank)
        )


async def blank_texts_of(session: AsyncSession, community_id: str, openid: str) -> int:
    """Every text one resident wrote (or was written in their 转人工 threads), open
    threads included; how many rows."""
    total = 0
    for table in TEXTS.values():
        if table.of is None:
            continue
        result = await session.execute(
            update(table.model)
            .where(table.of(community_id, openid), table.column(table.text) != "")
            .values(**table.blank)
        )
        total += int(getattr(result, "rowcount", 0) or 0)
    return total


def settled_notifications_before(cutoff: dt.datetime) -> Select[int]:
    """Settled notifications written before ``cutoff`` whose text is still there
    (those about no order quote residents too: an emergency, a 转人工 answer)."""
    outbox = models.OutboxMessage
    return select(outbox.id).where(
        outbox.status.in_(SETTLED_OUTBOX),
        outbox.created_at < cutoff,
        func.coalesce(outbox.payload["text"].as_string(), "") != "",
    )


async def blank_notifications(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await _blank_notifications(session, models.OutboxMessage.id.in_(list(ids)))


def abandoned_forms_before(cutoff: dt.datetime) -> Select[Any]:
    """Conversations (half-filled forms) that expired before ``cutoff``: their
    residents' openids (the key is (community, openid); the update checks the
    expiry again, so an openid of two communities is only cleared where due)."""
    state = models.ConversationState
    return select(state.openid).where(state.expires_at < cutoff)


async def forget_forms(session: AsyncSession, openids: Sequence[str], cutoff: dt.datetime) -> None:
    """Abandoned forms lose their answers; ``expires_at`` cleared marks them done."""
    if openids:
        state = models.ConversationState
        await session.execute(
            update(state)
            .where(state.openid.in_(list(openids)), state.expires_at < cutoff)
            .values(state=None, data={}, expires_at=None, version=state.version + 1)
        )


def retired_household_notes_before(cutoff: dt.datetime) -> Select[int]:
    """Households retired before ``cutoff`` (gone from the grid's list) whose notes
    (独居老人, names and phones of family) are still there."""
    household = models.Household
    return select(household.id).where(
        household.retired_at.is_not(None), household.retired_at < cutoff, household.notes != ""
    )


async def blank_household_notes(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(
            update(models.Household).where(models.Household.id.in_(list(ids))).values(notes="")
        )


async def count(session: AsyncSession, query: Select[Any]) -> int:
    """How many rows a query of ids finds."""
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


# --- one resident --------------------------------------------------------------------


@dataclass(frozen=True)
class ResidentOrder:
    id: int
    code: str
    title: str
    status: str
    created_at: dt.datetime
    contact_removed: bool
    last_moved: dt.datetime
    answers: dict[str, Any]


async def orders_of(session: AsyncSession, resident_id: int) -> list[ResidentOrder]:
    """The orders a resident placed (or staff placed for them), oldest first."""
    moved = last_activity().label("last_moved")
    rows = await session.execute(
        select(
            Order.id,
            Order.code,
            models.Item.title,
            Order.status,
            Order.created_at,
            Order.contact_removed_at.is_not(None),
            moved,
            Order.answers,
        )
        .join(models.Item, Order.item_id == models.Item.id)
        .where(Order.resident_id == resident_id)
        .order_by(Order.created_at, Order.id)
    )
    return [ResidentOrder(*row) for row in rows]


async def blank_follower_notes(session: AsyncSession, resident_id: int) -> None:
    """What a resident said when joining others' reports (我也遇到): their address and
    words, the unit's 同一问题 notification quoting them (keyed
    ``followed:{code}:{follower id}``; one still to be sent loses the quoted words)
    and the photos and places they sent with it (attached to the neighbour's order
    under their joining message's key, ``{message_key}#{index}``)."""
    outbox = models.OutboxMessage
    joined = (
        await session.execute(
            select(
                models.OrderFollower.id,
                models.OrderFollower.order_id,
                models.OrderFollower.message_key,
                models.OrderFollower.building,
                models.OrderFollower.note,
                Order.code,
            )
            .join(Order, Order.id == models.OrderFollower.order_id)
            .where(models.OrderFollower.resident_id == resident_id)
        )
    ).all()
    for row_id, order_id, message_key, building, note, code in joined:
        about = outbox.key.startswith(f"followed:{code}:{row_id}:", autoescape=True)
        await _blank_notifications(session, about)
        words = [w for w in (building, note) if w and len(w) >= 2]
        await _redact_pending(session, {order_id: words}, about)
        if message_key:
            await session.execute(
                update(models.OrderAttachment)
                .where(
                    models.OrderAttachment.order_id == order_id,
                    models.OrderAttachment.message_key.startswith(
                        f"{message_key}#", autoescape=True
                    ),
                )
                .values(data={})
            )
    await session.execute(
        update(models.OrderFollower)
        .where(models.OrderFollower.resident_id == resident_id)
        .values(building=None, note=None)
    )


async def blank_notifications_to(session: AsyncSession, community_id: str, openid: str) -> None:
    """The text of settled messages sent to a resident (about no order, or any)."""
    outbox = models.OutboxMessage
    await _blank_notifications(
        session,
        (outbox.community_id == community_id)
        & (outbox.channel == "resident")
        & (outbox.target == openid),
    )


def quoting_prefix(openid: str) -> str:
    """The start of the outbox key of a notification to staff quoting a resident's own
    words about no order (an emergency): how an erasure finds it. The handler
    that enqueues it starts its key with this."""
    return f"said:{openid}:"


async def blank_notifications_quoting(
    session: AsyncSession, community_id: str, openid: str
) -> None:
    """The text of settled notifications to staff that quoted a resident's words
    (keyed by :func:`quoting_prefix`). One still to be sent goes out: it is urgent."""
    outbox = models.OutboxMessage
    await _blank_notifications(
        session,
        (outbox.community_id == community_id)
        & outbox.key.startswith(quoting_prefix(openid), autoescape=True),
    )


async def drop_subscriptions(session: AsyncSession, resident_id: int) -> int:
    result = await session.execute(
        delete(models.Subscription).where(models.Subscription.resident_id == resident_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def forget_conversation(session: AsyncSession, community_id: str, openid: str) -> None:
    """A half-filled form's answers (a resident not in a conversation now: the
    console's erasure; in chat the handler clears its own conversation)."""
    state = models.ConversationState
    await session.execute(
        update(state)
        .where(state.community_id == community_id, state.openid == openid)
        .values(state=None, data={}, version=state.version + 1)
    )


async def blank_audit_details(
    session: AsyncSession, community_id: str, codes: Sequence[str]
) -> None:
    """The resident's name the audit log noted with proxy orders placed for them (the
    entry itself, who did what when, stays)."""
    if codes:
        await session.execute(
            update(models.AuditEntry)
            .where(
                models.AuditEntry.community_id == community_id,
                models.AuditEntry.action == "proxy_order",
                models.AuditEntry.target.in_(list(codes)),
            )
            .values(detail=None)
        )


async def request_for_message(
    session: AsyncSession, community_id: str, message_key: str
) -> models.ErasureRequest | None:
    return await session.scalar(
        select(models.ErasureRequest).where(
            models.ErasureRequest.community_id == community_id,
            models.ErasureRequest.message_key == message_key,
        )
    )


def unfinished_requests() -> Select[models.ErasureRequest]:
    return (
        select(models.ErasureRequest)
        .where(models.ErasureRequest.done_at.is_(None))
        .order_by(models.ErasureRequest.id)
    )


async def open_order_count(session: AsyncSession, resident_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count(Order.id)).where(
                Order.resident_id == resident_id, Order.status.in_(OPEN)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class TextCounts:
    needs: int
    remarks: int
    handoffs: int
    photos: int
    subscriptions: int


async def text_counts(
    session: AsyncSession, community_id: str, openid: str | None, resident_id: int
) -> TextCounts:
    """How many of a resident's texts, photos and subscriptions are kept."""

    async def kept(kind: str) -> int:
        table = TEXTS[kind]
        if openid is None or table.of is None:
            return 0
        query = select(table.column("id")).where(
            table.of(community_id, openid), table.column(table.text) != ""
        )
        return await count(session, query)

    photos = await count(
        session,
        select(models.OrderAttachment.id)
        .join(Order, Order.id == models.OrderAttachment.order_id)
        .where(Order.resident_id == resident_id, Order.photos_removed_at.is_(None)),
    )
    subscriptions = await count(
        session,
        select(models.Subscription.resident_id).where(
            models.Subscription.resident_id == resident_id
        ),
    )
    return TextCounts(
        needs=await kept("unmet_needs") + await kept("inbox_messages"),
        remarks=await kept("resident_remarks"),
        handoffs=await kept("handoffs"),
        photos=photos,
        subscriptions=subscriptions,
    )


async def finish_requests(session: AsyncSession, now: dt.datetime) -> int:
    """Unfinished erasure requests whose resident has no open order left and whose
    kept orders are all anonymised: the resident's contact details go, and the
    request is done. How many were."""
    finished = 0
    for request in (await session.scalars(unfinished_requests())).all():
        if await open_order_count(session, request.resident_id):
            continue
        if request.kept and await count(session, kept_orders(request.kept)):
            continue
        await clear_contact(session, [request.resident_id], everything=True)
        request.done_at = now
        finished += 1
    return finished


async def finishable_requests(session: AsyncSession) -> int:
    """How many :func:`finish_requests` would finish now (a dry run)."""
    ready = 0
    for request in (await session.scalars(unfinished_requests())).all():
        if not await open_order_count(session, request.resident_id):
            ready += 1
    return ready


async def forget_replies(session: AsyncSession, community_id: str, addressed: str) -> None:
    """Replies already sent that the message ledger keeps for retries (a day), those
    containing ``addressed`` (the reply XML's recipient element): they may echo what
    the resident typed. A retry of such a message is then answered with nothing."""
    ledger = models.ProcessedMessage
    await session.execute(
        update(ledger)
        .where(
            ledger.community_id == community_id,
            ledger.done.is_(True),
            ledger.reply.contains(addressed, autoescape=True),
        )
        .values(reply=None)
    )
