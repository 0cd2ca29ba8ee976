"""Unit members and grid workers (网格员): binding a WeChat to a unit or a grid with a
one-time invite code, and who is bound to a unit."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.order_status import OPEN_STATUSES
from storage.types import utcnow

INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_LENGTH = 10
"""31¹⁰ ≈ 8×10¹⁴: not guessable, and short enough to type."""


class InviteError(LookupError):
    """The code cannot bind: ``reason`` is unknown, used or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def unit_row(session: AsyncSession, community_id: str, unit_key: str) -> models.Unit | None:
    return await session.scalar(
        select(models.Unit).where(
            models.Unit.community_id == community_id,
            models.Unit.key == unit_key,
            models.Unit.retired_at.is_(None),
        )
    )


async def create_invite(
    session: AsyncSession, unit: models.Unit, *, ttl: dt.timedelta, created_by: str
) -> tuple[str, dt.datetime]:
    """A new code (shown once; only its hash is stored) and when it expires."""
    return _invite(session, ttl=ttl, created_by=created_by, unit_id=unit.id)


async def create_grid_invite(
    session: AsyncSession,
    community_id: str,
    grid_key: str,
    *,
    ttl: dt.timedelta,
    created_by: str,
) -> tuple[str, dt.datetime]:
    """A new code binding a grid worker (网格员) to ``grid_key``, and when it expires."""
    return _invite(
        session, ttl=ttl, created_by=created_by, community_id=community_id, grid_key=grid_key
    )


def _invite(
    session: AsyncSession,
    *,
    ttl: dt.timedelta,
    created_by: str,
    unit_id: int | None = None,
    community_id: str | None = None,
    grid_key: str | None = None,
) -> tuple[str, dt.datetime]:
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
    expires = utcnow() + ttl
    session.add(
        models.UnitInvite(
            unit_id=unit_id,
            community_id=community_id,
            grid_key=grid_key,
            code_hash=_hash(code),
            expires_at=expires,
            created_by=created_by,
        )
    )
    return code, expires


@dataclass(frozen=True)
class Bound:
    """What a code bound a person to: a unit (as its member), or a grid (as its
    网格员, ``grid_key``)."""

    unit: models.Unit | None = None
    grid_key: str | None = None


async def redeem(session: AsyncSession, community_id: str, code: str, openid: str) -> Bound:
    """Bind ``openid`` with a one-time code, a unit's or a grid's: the one place codes
    are checked (unknown, used by someone else, expired) and spent."""
    invite = await session.scalar(
        select(models.UnitInvite)
        .where(models.UnitInvite.code_hash == _hash(code))
        .with_for_update()
    )
    if invite is None:
        raise InviteError("unknown")
    unit = await session.get(models.Unit, invite.unit_id) if invite.unit_id is not None else None
    owner = unit.community_id if unit is not None else invite.community_id
    if owner != community_id or (unit is None and invite.grid_key is None):
        raise InviteError("unknown")
    bound = Bound(unit=unit, grid_key=None if unit is not None else invite.grid_key)
    if invite.used_at is not None:
        if invite.used_by == openid:
            return bound  # the same person sending the same code again: already bound
        raise InviteError("used")
    if invite.expires_at < utcnow():
        raise InviteError("expired")
    invite.used_at, invite.used_by = utcnow(), openid
    if unit is not None:
        await _join_unit(session, unit, openid)
    else:
        assert invite.grid_key is not None
        await _join_grid(session, community_id, invite.grid_key, openid)
    return bound


async def _join_unit(session: AsyncSession, unit: models.Unit, openid: str) -> None:
    member = await session.scalar(
        select(models.UnitMember).where(
            models.UnitMember.unit_id == unit.id, models.UnitMember.openid == openid
        )
    )
    if member is None:
        session.add(models.UnitMember(unit_id=unit.id, openid=openid))
    else:
        member.active = True


async def _join_grid(session: AsyncSession, community_id: str, grid_key: str, openid: str) -> None:
    worker = await session.scalar(
        select(models.GridWorker).where(
            models.GridWorker.community_id == community_id,
            models.GridWorker.grid_key == grid_key,
            models.GridWorker.openid == openid,
        )
    )
    if worker is None:
        session.add(models.GridWorker(community_id=community_id, grid_key=grid_key, openid=openid))
    elif not worker.active:  # unbound once, bound again: from now
        worker.active, worker.bound_at = True, utcnow()


@dataclass(frozen=True)
class Membership:
    unit_id: int
    unit_key: str


async def memberships(session: AsyncSession, community_id: str, openid: str) -> list[Membership]:
    rows = await session.execute(
        select(models.Unit.id, models.Unit.key)
        .join(models.UnitMember, models.UnitMember.unit_id == models.Unit.id)
        .where(
            models.Unit.community_id == community_id,
            models.UnitMember.openid == openid,
            models.UnitMember.active.is_(True),
        )
    )
    return [Membership(unit_id, key) for unit_id, key in rows]


async def active_members(session: AsyncSession, community_id: str, unit_key: str) -> list[str]:
    """The openids bound to a unit and still active, in the order they were bound: the
    WeChat users a unit's notifications go to."""
    rows = await session.scalars(
        select(models.UnitMember.openid)
        .join(models.Unit, models.UnitMember.unit_id == models.Unit.id)
        .where(
            models.Unit.community_id == community_id,
            models.Unit.key == unit_key,
            models.UnitMember.active.is_(True),
        )
        .order_by(models.UnitMember.id)
    )
    return list(rows)


async def open_orders(
    session: AsyncSession, unit_ids: list[int], limit: int = 20
) -> list[tuple[str, str, str]]:
    """(code, item title, status) of the units' open orders, oldest first."""
    rows = await session.execute(
        select(models.Order.code, models.Item.title, models.Order.status)
        .join(models.Item, models.Order.item_id == models.Item.id)
        .where(
            models.Order.unit_id.in_(unit_ids),
            models.Order.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(models.Order.created_at, models.Order.id)
        .limit(limit)
    )
    return [(code, title, status) for code, title, status in rows]
