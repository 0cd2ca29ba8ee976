"""Residents' answers to the personal-information notice, one row per answer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.engine import insert_new
from storage.models import Consent


async def record(
    session: AsyncSession,
    *,
    community_id: str,
    resident_id: int,
    message_key: str,
    action: str,
    notice_version: int,
    method: str,
    at: dt.datetime,
    actor: str | None = None,
) -> None:
    """Add an answer; a second one with the same ``message_key`` (a retried message)
    is left out."""
    await session.execute(
        insert_new(session, Consent).values(
            community_id=community_id,
            resident_id=resident_id,
            message_key=message_key,
            action=action,
            notice_version=notice_version,
            method=method,
            actor=actor,
            created_at=at,
        )
    )


async def latest(session: AsyncSession, resident_id: int) -> Consent | None:
    """The resident's last answer (the one that counts)."""
    return await session.scalar(
        select(Consent)
        .where(Consent.resident_id == resident_id)
        .order_by(Consent.id.desc())
        .limit(1)
    )


async def residents_named(
    session: AsyncSession, community_id: str, said: str
) -> list[models.Resident]:
    """Residents whose phone or name is exactly ``said`` (the console's look-up for a
    resident at the counter)."""
    return list(
        await session.scalars(
            select(models.Resident)
            .where(
                models.Resident.community_id == community_id,
                (models.Resident.phone == said) | (models.Resident.name == said),
            )
            .order_by(models.Resident.id)
            .limit(20)
        )
    )


async def resident_in(
    session: AsyncSession, community_id: str, resident_id: int
) -> models.Resident | None:
    return await session.scalar(
        select(models.Resident).where(
            models.Resident.community_id == community_id, models.Resident.id == resident_id
        )
    )
