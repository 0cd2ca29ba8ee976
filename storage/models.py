"""The database schema, as typed SQLAlchemy 2.0 models.

Conventions:
- Every time is stored in UTC (:class:`UTCDateTime`); the community's time zone is
  applied only when talking to people.
- Catalog records (units, items, slots) are *retired*, never deleted: orders keep
  pointing at what was ordered, and the 公示 history stays true.
- ``key`` columns hold the catalog's own ids (``law-firm``); ``id`` columns are
  surrogate keys that nothing outside the database relies on.
- Every relationship loads explicitly (``lazy="raise"``): an accidental lazy load in
  async code is an error at the line that caused it, not a hang or a MissingGreenlet
  somewhere later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import JSONType, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime,
        dict[str, Any]: JSONType,
    }


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Grid(Base):
    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    areas: Mapped[list[str]] = mapped_column(JSONType, default=list)
    retired_at: Mapped[dt.datetime | None]


class CatalogVersion(Base):
    """Every catalog a community has had, in order; the newest row is the live catalog."""

    __tablename__ = "catalog_versions"
    __table_args__ = (Index(None, "community_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    version: Mapped[str] = mapped_column(String(32))
    """Content hash of the canonical document (see ``Catalog.version``)."""
    document: Mapped[str] = mapped_column(Text)
    """The validated document as JSON: the live catalog is rebuilt from it."""
    source: Mapped[str] = mapped_column(String(500))
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    """Hash of the imported file's bytes: ``serve`` re-imports only a file that changed."""
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    accept_within_hours: Mapped[float] = mapped_column(Float, default=24)
    commitment: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    retired_at: Mapped[dt.datetime | None]


class UnitMember(Base):
    """A person who acts for a unit (binds their WeChat with an invite code)."""

    __tablename__ = "unit_members"
    __table_args__ = (UniqueConstraint("unit_id", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    bound_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class UnitInvite(Base):
    """A one-time code with which a person binds their WeChat to a unit, or (with
    ``grid_key``; the table keeps its first name) to a grid as its 网格员."""

    __tablename__ = "unit_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    """The unit the code binds to; None for a grid worker's code."""
    community_id: Mapped[str | None] = mapped_column(String(64))
    """The community of a grid worker's code (a unit's code has it through the unit)."""
    grid_key: Mapped[str | None] = mapped_column(String(64))
    """The grid a grid worker's code binds to; None for a unit's code."""
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the code: the code itself is shown once and never stored."""
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """A notification to deliver, written in the transaction of the change behind it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "order_id", "status"),  # an order's undelivered notifications
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """Idempotency key: the same notification is enqueued (and sent) once."""
    channel: Mapped[str] = mapped_column(String(32))
    """wechat, wecom_robot, webhook, log (to a unit) or resident (to a resident)."""
    target: Mapped[str] = mapped_column(String(200))
    """The unit's catalog id, or the resident's openid."""
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending; sending (its one attempt on a channel that must not repeat a send has
    begun: marked just before it); sent; failed; or unknown (sent, no clear answer:
    never resent, see docs/notifications.md)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    """The order the notification is about; None for messages about no order."""
    cause: Mapped[str | None] = mapped_column(String(64))
    """Why it was not delivered, as a code (``bot.jobs.failures.CAUSES``): set with
    ``failed`` or ``unknown``, cleared once it is sent."""


class Broadcast(Base):
    """A safety-campaign notice to the subscribers of a topic, once or on a schedule."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    topic: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    grid_key: Mapped[str | None] = mapped_column(String(64))
    tag: Mapped[str | None] = mapped_column(String(64))
    send_at: Mapped[dt.datetime | None]
    """One-off: when to start."""
    cron: Mapped[str | None] = mapped_column(String(100))
    """Recurring: a crontab line in the community's time zone (``0 10 * * FRI``)."""
    active_from: Mapped[dt.datetime | None]
    active_until: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    """scheduled, done (no more runs) or cancelled."""
    created_by: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BroadcastRun(Base):
    """One sending of a broadcast (a recurring one has one per occurrence)."""

    __tablename__ = "broadcast_runs"
    __table_args__ = (UniqueConstraint("broadcast_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")
    """running or done."""
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class BroadcastDelivery(Base):
    """One resident's copy of one run: the unit of progress, resumable after a crash.

    The run's channel plan decides each row's ``channel`` when the run starts: ``mass``
    (in a :class:`MassBatch`, WeChat's mass send), ``service`` (a customer-service
    message: their monthly mass quota is spent but they wrote in the last 48 hours) or
    ``none`` (neither: skipped, left to the group posts and the door-to-door visits).
    Rows from before channel plans (migration 0023) read as ``service``."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "resident_id"),
        Index(None, "status", "id"),  # the sender takes the oldest pending row
        Index(None, "resident_id", "channel"),  # a follower's mass sends this month
        # The next customer-service message: an index of the pending rows only.
        # Given (status, id), the planner walked the primary key past every row
        # already sent (a mass send's worth): 40 ms a claim with 100,000 of them.
        Index(
            None,
            "channel",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(None, "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("broadcast_runs.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    channel: Mapped[str] = mapped_column(String(16), default="service", server_default="service")
    """mass, service or none (see the class docstring)."""
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("mass_batches.id"))
    """The mass-send batch that carries it (channel ``mass``)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, sending, sent, failed, skipped, or unknown (a crash while sending). A
    mass row is ``sent`` once WeChat took its batch (its finish event tells the rest)."""
    reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MassBatch(Base):
    """One call of WeChat's mass send (群发) for one run: up to 10,000 followers.

    ``client_msg_id`` is fixed when the run is planned, so a call repeated after a
    crash or a lost answer is one WeChat recognises (45065) and does not send again.
    ``pending → sending → submitted`` (WeChat took it: ``msg_id``), or ``failed``
    (refused, with ``error``), or ``unknown`` (no answer, and too late to repeat the
    call safely: WeChat keeps a clientmsgid for 24 hours). WeChat's
    ``MASSSENDJOBFINISH`` event fills in the result counts later."""

    __tablename__ = "mass_batches"
    __table_args__ = (
        UniqueConstraint("run_id", "seq"),
        Index(None, "status", "id"),
        Index(None, "community_id", "msg_id"),  # the finish event names the msg_id
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("broadcast_runs.id"))
    community_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    """The batch's number within its run, from 1."""
    client_msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    first_sent_at: Mapped[dt.datetime | None]
    """When the first call went out: past 24 hours a repeat is no longer safe."""
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    error: Mapped[str | None] = mapped_column(String(200))
    msg_id: Mapped[int | None] = mapped_column(BigInteger)
    msg_data_id: Mapped[int | None] = mapped_column(BigInteger)
    finish_status: Mapped[str | None] = mapped_column(String(64))
    """WeChat's word on the job (``send success``, ``send fail``, ``err(10001)`` …)."""
    total_count: Mapped[int | None] = mapped_column(Integer)
    filter_count: Mapped[int | None] = mapped_column(Integer)
    """Followers left after WeChat's filters (opted out, over their monthly four)."""
    sent_count: Mapped[int | None] = mapped_column(Integer)
    error_count: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[dt.datetime | None]


class User(Base):
    """A person who logs in to the web side: admin, community staff, or a unit member."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("community_id", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id; never the password."""
    role: Mapped[str] = mapped_column(String(16))
    """admin, staff or unit."""
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A logged-in browser: the cookie holds a random token, the table its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """A failed login: counted across every process, so N processes do not allow N
    times the attempts."""

    __tablename__ = "login_failures"
    __table_args__ = (Index(None, "account", "remote", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(140))
    """``<community>:<username>`` as typed (the name may not exist)."""
    remote: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what, when, from the web side (staff and units)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "community_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class Reminder(Base):
    """Something to do at a time: a row, polled in batches, so nothing is lost while
    the service is down and nothing fires twice."""

    __tablename__ = "reminders"
    __table_args__ = (Index(None, "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    """accept_remind, escalate, session_eve (the eve of a booked slot), rate_ask."""
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, done, skipped (no longer relevant when it came due) or failed."""
    fired_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    """Why acting on it failed (status ``failed``): it is set aside, never retried
    ahead of the others, and shown to operators."""


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    key: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    title: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The item's full catalog entry (keywords, form, schedule …) as imported."""
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    retired_at: Mapped[dt.datetime | None]

    unit: Mapped[Unit] = relationship(lazy="raise")


class ItemCoUnit(Base):
    """Co-units of a 组团式 item: informed of its orders, the lead unit owns them."""

    __tablename__ = "item_co_units"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)


class ItemSlot(Base):
    """A dated occurrence of an item with limited places (a slot: the catalog's
    ``sessions:`` entries and the dated weeks of its ``weekly:`` ones). Table and column
    names keep the catalog format's word, ``session``."""

    __tablename__ = "item_sessions"
    __table_args__ = (UniqueConstraint("item_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    key: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    capacity: Mapped[int | None] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    """Places taken; only ever changed by a conditional UPDATE (booked < capacity)."""
    location: Mapped[str | None] = mapped_column(String(200))
    retired_at: Mapped[dt.datetime | None]


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (UniqueConstraint("community_id", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    openid: Mapped[str | None] = mapped_column(String(64))
    """None for residents without WeChat, for whom staff place proxy orders (代办)."""
    name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    building: Mapped[str | None] = mapped_column(String(200))
    grid_key: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    last_message_at: Mapped[dt.datetime | None]
    """Start of the 48-hour customer-service window."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A resident's subscription to a campaign topic (反诈, 防溺水 …)."""

    __tablename__ = "subscriptions"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "community_id", "status"),
        Index(None, "unit_id", "status"),
        Index(None, "resident_id", "created_at"),
        Index(None, "community_id", "created_at"),  # the staff board, newest first, paged
        UniqueConstraint("community_id", "message_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    slot_id: Mapped[int | None] = mapped_column("session_id", ForeignKey("item_sessions.id"))
    status: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    grid_key: Mapped[str | None] = mapped_column(String(64))
    placed_by: Mapped[str] = mapped_column(String(100), default="resident")
    """``resident``, or ``staff:<user>`` for proxy orders (代办)."""
    message_key: Mapped[str | None] = mapped_column(String(200))
    """The message that placed the order: a retried message finds it instead of
    placing a second one."""
    description: Mapped[str] = mapped_column(Text, default="")
    """The need in the resident's own words."""
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    contact_removed_at: Mapped[dt.datetime | None]
    """When its contact details and free text were anonymised (``bot.privacy``): the
    order keeps its status, unit, item, times and rating for the figures."""
    photos_removed_at: Mapped[dt.datetime | None]
    """When the photos and places sent about it were removed (``bot.privacy``)."""

    item: Mapped[Item] = relationship(lazy="raise")
    unit: Mapped[Unit] = relationship(lazy="raise")
    resident: Mapped[Resident] = relationship(lazy="raise")
    slot: Mapped[ItemSlot | None] = relationship(lazy="raise")


class OrderEvent(Base):
    """Append-only history of an order: the audit trail evaluation and 公示 build on."""

    __tablename__ = "order_events"
    __table_args__ = (Index(None, "order_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class OrderFollower(Base):
    """A resident who reported the same problem as an order's reporter and joined it
    (我也遇到): they hear of its progress like the reporter, and the unit sees how many
    households are affected. ``status``: ``following``, or ``left`` (the resident
    withdrew their interest; the order goes on). One row per order and resident, so a
    retried message joins once."""

    __tablename__ = "order_followers"
    __table_args__ = (
        UniqueConstraint("order_id", "resident_id"),
        Index(None, "resident_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    status: Mapped[str] = mapped_column(String(16), default="following")
    message_key: Mapped[str | None] = mapped_column(String(200))
    """The message that joined the order."""
    building: Mapped[str | None] = mapped_column(String(200))
    """Where this resident said the problem is (their own words)."""
    note: Mapped[str | None] = mapped_column(Text)
    """What they said about it."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    left_at: Mapped[dt.datetime | None]


class OrderAttachment(Base):
    """A photo or a place a resident sent about an order (a leak, a missing manhole)."""

    __tablename__ = "order_attachments"
    __table_args__ = (UniqueConstraint("order_id", "message_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    message_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    """``image`` or ``location``."""
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """image: pic_url, media_id; location: latitude, longitude, label."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WaitlistEntry(Base):
    """A resident waiting for a place in a full slot, and the offer of a freed one.

    ``waiting`` → ``offered`` (a place is held for the resident until ``hold_until``;
    it counts in the slot's ``booked``) → ``accepted`` (the order placed with it),
    ``declined`` or ``expired`` (the place went to the next in line). Every move is a
    conditional UPDATE on the status, so a place is handed on once.
    """

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        UniqueConstraint("session_id", "resident_id"),
        Index(None, "session_id", "status", "created_at"),  # the next in line
        Index(None, "status", "hold_until"),  # holds run out
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column("session_id", ForeignKey("item_sessions.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    people: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="waiting", server_default="waiting")
    offered_at: Mapped[dt.datetime | None]
    hold_until: Mapped[dt.datetime | None]
    """When the held place goes to the next in line, unless the resident took it."""
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    """The order placed with the offered place."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why handing the place on failed last time (retried later)."""


class Handoff(Base):
    """A resident asked for a person (转人工): staff answer from the console."""

    __tablename__ = "handoffs"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key"),
        Index(None, "community_id", "status", "created_at"),
        Index(None, "community_id", "openid", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    openid: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    """What the resident wrote with the request, and the conversation so far."""
    status: Mapped[str] = mapped_column(String(16), default="open")
    """``open`` until staff close it (``closed``); ``answered``: closed by the one
    reply a handoff had before threads (migration 0022)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None]
    """When staff last replied."""
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    asked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The resident asked for a person (转人工): while open, what they write goes to
    staff only. Otherwise (the bot handed on a question, a complaint, an emergency)
    their later messages join the thread and the bot answers them as usual."""


class HandoffMessage(Base):
    """One message of a 转人工 thread after its first: the resident's later messages
    (once per inbound message) and staff replies."""

    __tablename__ = "handoff_messages"
    __table_args__ = (
        UniqueConstraint("handoff_id", "message_key"),
        Index(None, "handoff_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"))
    author: Mapped[str] = mapped_column(String(16))
    """``resident`` or ``staff``."""
    staff: Mapped[str | None] = mapped_column(String(64))
    """The staff member's username, for a reply."""
    message_key: Mapped[str | None] = mapped_column(String(200))
    """The resident's inbound message (None for a staff reply)."""
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ResidentRemark(Base):
    """What a resident said that is neither an order nor an unmet need, kept for staff.

    ``kind`` is ``emergency`` (danger now: staff are alerted at once), ``praise`` (thanks
    naming a unit or an order: evidence for 动态考评), ``complaint``, or ``outcome`` (the
    resident's word on an order's result, such as 还在漏). One row per message and kind,
    so a retried message is recorded once.
    """

    __tablename__ = "resident_remarks"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key", "kind"),
        Index(None, "community_id", "kind", "created_at"),
        Index(None, "unit_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    openid: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(32))
    """emergency: fire, medical, crime, fraud, missing, water, gas; outcome: solved or
    unsolved; praise and complaint: None."""
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConversationState(Base):
    """Where a resident is in a multi-turn conversation; survives restarts."""

    __tablename__ = "conversation_states"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    expires_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Raised by every save, which is conditional on the version read: a save made on
    a stale reading (two messages of one resident at once, a lost lock) is refused
    instead of undoing the other."""


class ProcessedMessage(Base):
    """Inbound messages already taken: WeChat retries three times, effects happen once."""

    __tablename__ = "processed_messages"
    __table_args__ = (Index(None, "deferred", "done"),)

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    deferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Answered "success" because the reply was late; it goes out by the API instead."""
    reply: Mapped[str | None] = mapped_column(Text)
    """The reply sent the first time (plaintext XML), sent again to a retry."""
    owner: Mapped[str | None] = mapped_column(String(32))
    """The token of the attempt holding the claim: only it may record the reply."""
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    """On the database's clock: after it, the claim may be taken over."""
    payload: Mapped[str | None] = mapped_column(Text)
    """A deferred message as received (JSON), to run it again if its process dies."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Runs of a deferred message taken over from a dead or failed attempt."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why a deferred message was given up (after ``attempts`` failed runs)."""


class UnmetNeed(Base):
    """A message that matched nothing in the catalog: what residents ask that nobody offers.

    Staff read these (需求清单) to recruit a unit for a service residents want.
    """

    __tablename__ = "unmet_needs"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key"),
        Index(None, "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    openid: Mapped[str | None] = mapped_column(String(64))
    message_key: Mapped[str | None] = mapped_column(String(200))
    """The inbound message's dedupe key: a retried message is recorded once."""
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """The matcher's best (rejected) guesses, to show staff what came closest."""
    catalog_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstanceSetting(Base):
    """Values the instance generates for itself when none are configured (dev mode)."""

    __tablename__ = "instance_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AccessToken(Base):
    """The WeChat API access token, shared by every process serving a community.

    WeChat limits how often tokens may be fetched and a new token can invalidate the
    previous one, so processes must not each fetch their own: the row is the cache,
    and locking it is how one process at a time refreshes (see bot/wechat/token_store).
    """

    __tablename__ = "access_tokens"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(512))
    """WeChat asks clients to reserve at least 512 characters for a token."""
    expires_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    """When the token was fetched: with ``expires_at`` it gives the token's lifetime."""


class LearnedDecision(Base):
    """A decision staff took in the learning inbox: what a phrase residents use means.

    ``action`` is ``synonym`` (a way of asking for the item ``target``), ``faq`` (a way
    of asking the FAQ entry ``target``), ``ignore`` (the phrase says nothing; no
    target) or ``forget`` (an earlier decision on the phrase is withdrawn). Rows are
    never changed: the newest row of a phrase is the one in effect, and the newest
    row's id is the community's learning revision that every process polls.
    Decisions are kept apart from the catalog YAML so that a new import keeps them.
    """

    __tablename__ = "learned_decisions"
    __table_args__ = (Index(None, "community_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    phrase: Mapped[str] = mapped_column(String(200))
    """Normalised (``catalog.learned.phrase_of``): simplified, no punctuation or spaces."""
    action: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(64))
    """The item's or FAQ entry's catalog id; None for ``ignore`` and ``forget``."""
    decided_by: Mapped[str] = mapped_column(String(100))
    """The console user's name (as in the audit log)."""
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InboxMessage(Base):
    """A message the bot did not understand, kept for staff to teach it (学习箱).

    ``reason`` is ``none`` (matched nothing), ``ambiguous`` (several services were
    offered) or ``rejected`` (the bot's guess was answered with 不是 or 取消). One row
    per message and reason, so a retried message is recorded once.
    """

    __tablename__ = "inbox_messages"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key", "reason"),
        # The open inbox, newest first: community, not yet decided, id.
        Index(None, "community_id", "decision_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    openid: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(16))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """The items offered or guessed, best first: ``{"item": id, "score": 0..1}``."""
    catalog_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("learned_decisions.id"))
    """The decision that dealt with this message; None while it waits in the inbox."""


class Notice(Base):
    """A notice staff publish for the whole community, a grid or a building
    (「5栋今日停水，预计18点恢复」) until ``ends_at``: a resident there whose message is
    about the same thing is answered with it first (``handlers.notices``)."""

    __tablename__ = "notices"
    __table_args__ = (Index(None, "community_id", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    text: Mapped[str] = mapped_column(Text)
    grid_key: Mapped[str | None] = mapped_column(String(64))
    """The grid it is for; None with no ``building`` either: the whole community."""
    building: Mapped[str | None] = mapped_column(String(200))
    """The building it is for, as staff wrote it (5栋, 解东小区5栋)."""
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """Words of messages it answers, besides those read from its text (停水 → 没水 …)."""
    item_key: Mapped[str | None] = mapped_column(String(64))
    """A catalog item: a message read as that item is about the notice too."""
    starts_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NoticeAnswer(Base):
    """A resident answered with a notice: told once, after which their messages go to
    ordering as usual; the count is shown to staff."""

    __tablename__ = "notice_answers"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True)
    reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """They still reported it after reading the notice."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Household(Base):
    """A household of a grid, imported from the grid's list (楼栋, 单元, 房号, 备注):
    what door-to-door visits (下户走访) go through, and what campaign coverage counts.
    One row per address (``address_key``, see ``catalog.addresses``): a list imported
    again updates its rows. Retired, never deleted: visits keep pointing at them."""

    __tablename__ = "households"
    __table_args__ = (
        UniqueConstraint("community_id", "address_key"),
        Index(None, "community_id", "grid_key"),
        Index(None, "community_id", "bare_key"),  # 3栋2单元501 said without the estate
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    grid_key: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(100))
    """As shown to people: 3栋, 解东小区3栋."""
    unit: Mapped[str] = mapped_column(String(16), default="")
    """2 (for 2单元); "" in a building without units."""
    room: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    address_key: Mapped[str] = mapped_column(String(200))
    """Normalised: 3-2-501, 解东:3-2-501 (``catalog.addresses.Address.key``)."""
    bare_key: Mapped[str] = mapped_column(String(200))
    """``address_key`` without the estate (3-2-501): an address said without one finds
    the household by equality, through an index (a LIKE '%:…' read every row)."""
    elderly_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    """独居老人: from the list's column, or its notes saying so; visited first."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    retired_at: Mapped[dt.datetime | None]


class GridWorker(Base):
    """A 网格员: a person who visits a grid's households, bound to the grid with an
    invite code as a unit's members are."""

    __tablename__ = "grid_workers"
    __table_args__ = (
        UniqueConstraint("community_id", "grid_key", "openid"),
        Index(None, "community_id", "openid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    grid_key: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class HouseholdVisit(Base):
    """One door-to-door visit (下户走访) a grid worker recorded by chat. ``outcome``:
    ``reached`` (已宣传), ``nobody_home`` (没人在家) or ``follow_up`` (需跟进: reached,
    and a :class:`VisitFollowUp` made). One row per message, so a retried message is
    recorded once. ``broadcast_id``: the campaign in effect for the grid then."""

    __tablename__ = "household_visits"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key"),
        Index(None, "household_id", "broadcast_id"),
        Index(None, "community_id", "grid_key", "created_at"),
        Index(None, "broadcast_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    grid_key: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    """The grid worker who recorded it."""
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    message_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VisitFollowUp(Base):
    """What a visit found needs doing (需跟进): open until a grid worker (跟进完成) or
    staff (the console) mark it done."""

    __tablename__ = "visit_followups"
    __table_args__ = (Index(None, "community_id", "status", "grid_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("household_visits.id"), unique=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    grid_key: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open or done."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_by: Mapped[str | None] = mapped_column(String(100))
    """``staff:<username>`` or ``grid:<openid>``."""
    done_at: Mapped[dt.datetime | None]


class CampaignQrCode(Base):
    """The permanent scene QR code on a campaign's poster, made once with WeChat: an
    account may hold 100,000 of them, so the poster asks WeChat only for a campaign
    that has none yet."""

    __tablename__ = "campaign_qrcodes"

    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), primary_key=True)
    scene: Mapped[str] = mapped_column(String(64))
    """What the code carries (``campaign-12``): the EventKey of a scan."""
    ticket: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(300))
    """The code's content (``http://weixin.qq.com/q/…``)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WeChatGroup(Base):
    """A WeChat group of the community's residents (楼栋群), where grid heads share
    campaign posters: which grid it belongs to and the buildings it covers."""

    __tablename__ = "wechat_groups"
    __table_args__ = (UniqueConstraint("community_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    name: Mapped[str] = mapped_column(String(100))
    grid_key: Mapped[str | None] = mapped_column(String(64))
    buildings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """As staff typed them (3栋, 解东小区5栋)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GroupPost(Base):
    """A campaign posted to a WeChat group, as staff ticked it; un-ticking deletes it."""

    __tablename__ = "group_posts"
    __table_args__ = (UniqueConstraint("broadcast_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    group_id: Mapped[int] = mapped_column(ForeignKey("wechat_groups.id"))
    posted_by: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    buildings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """The group's buildings when it was ticked: a later edit of the group does not
    rewrite the coverage of campaigns already reported."""


class CampaignScan(Base):
    """A resident scanned a campaign poster's QR code (and followed, or was already
    following): kept once per WeChat event, so a retried event counts once."""

    __tablename__ = "campaign_scans"
    __table_args__ = (Index(None, "broadcast_id", "resident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    message_key: Mapped[str] = mapped_column(String(200), unique=True)
    scanned_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ErasureRequest(Base):
    """A resident's request to erase what is kept about them (删除我的信息), by chat or
    through staff for a resident without a smartphone. Done at once, except for what
    orders still open need (``kept``: their codes): ``done_at`` stays empty until they
    have closed and the retention job (``bot.privacy.retention``) has erased the rest.
    One row per chat message (``message_key``), so a retried message erases once."""

    __tablename__ = "erasure_requests"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key"),
        Index(None, "done_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    message_key: Mapped[str | None] = mapped_column(String(200))
    """The chat message that confirmed it; None for a request made in the console."""
    requested_by: Mapped[str] = mapped_column(String(100))
    """``resident``, or ``staff:<username>`` / ``admin:<username>``."""
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kept: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """Codes of the open orders whose contact details were kept for the time being."""
    done_at: Mapped[dt.datetime | None]


class Consent(Base):
    """A resident's answer to the personal-information notice (个人信息保护法): given,
    refused or withdrawn, under which version of the notice, how and when. Rows are
    only added (the latest one counts), so the history is the proof; one per WeChat
    message (``message_key``), so a retried message records once."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("community_id", "message_key"),
        Index(None, "resident_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    message_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    """given, refused or withdrawn."""
    notice_version: Mapped[int]
    method: Mapped[str] = mapped_column(String(16))
    """said (replied 同意/不同意/撤回同意), answered (answered the question the notice
    came with), or in_person (recorded by staff at the console)."""
    actor: Mapped[str | None] = mapped_column(String(100))
    """The staff member who recorded it at the console; None in chat."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
