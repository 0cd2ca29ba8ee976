"""Web users, their sessions, and the audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.types import utcnow

ROLES = ("admin", "staff", "unit")


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    username: str
    role: str
    community_id: str
    unit_id: int | None
    unit_key: str | None
    csrf: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def find_user(session: AsyncSession, community_id: str, username: str) -> models.User | None:
    return await session.scalar(
        select(models.User).where(
            models.User.community_id == community_id,
            models.User.username == username,
            models.User.active.is_(True),
        )
    )


async def open_session(session: AsyncSession, user: models.User, *, lifetime: dt.timedelta) -> str:
    """A new login: returns the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        models.WebSession(
            token_hash=_hash(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(24),
            expires_at=utcnow() + lifetime,
        )
    )
    return token


async def signed_in(session: AsyncSession, token: str) -> SignedIn | None:
    row = (
        await session.execute(
            select(models.WebSession, models.User, models.Unit.key)
            .join(models.User, models.WebSession.user_id == models.User.id)
            .outerjoin(models.Unit, models.User.unit_id == models.Unit.id)
            .where(models.WebSession.token_hash == _hash(token))
        )
    ).first()
    if row is None:
        return None
    web_session, user, unit_key = row
    if web_session.expires_at < utcnow() or not user.active:
        return None
    return SignedIn(
        user.id,
        user.username,
        user.role,
        user.community_id,
        user.unit_id,
        unit_key,
        web_session.csrf,
    )


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(
        delete(models.WebSession).where(models.WebSession.token_hash == _hash(token))
    )


async def audit(
    session: AsyncSession,
    community_id: str,
    actor: str,
    action: str,
    target: str,
    detail: str | None = None,
    *,
    at: dt.datetime | None = None,
) -> None:
    session.add(
        models.AuditEntry(
            community_id=community_id,
            actor=actor,
            action=action,
            target=target,
            detail=detail,
            at=at or utcnow(),
        )
    )
