"""What a campaign's kit keeps: the poster's QR code, made once, and the scans of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import insert_new
from storage.models import Broadcast, CampaignQrCode, CampaignScan


async def campaign(session: AsyncSession, community_id: str, broadcast_id: int) -> Broadcast | None:
    """A campaign (broadcast) of the community; None for another community's or none."""
    return await session.scalar(
        select(Broadcast).where(
            Broadcast.community_id == community_id, Broadcast.id == broadcast_id
        )
    )


async def qrcode_of(session: AsyncSession, broadcast_id: int) -> CampaignQrCode | None:
    return await session.get(CampaignQrCode, broadcast_id)


async def keep_qrcode(
    session: AsyncSession, broadcast_id: int, scene: str, ticket: str, url: str
) -> CampaignQrCode:
    """Keep the code WeChat made; when another request kept one first, that one stays
    (WeChat answers a scene with the same code, so they are the same anyway)."""
    await session.execute(
        insert_new(session, CampaignQrCode).values(
            broadcast_id=broadcast_id, scene=scene, ticket=ticket, url=url
        )
    )
    kept = await session.get(CampaignQrCode, broadcast_id, populate_existing=True)
    assert kept is not None
    return kept


async def record_scan(
    session: AsyncSession, broadcast_id: int, resident_id: int, message_key: str, now: dt.datetime
) -> bool:
    """A scan of the campaign's poster by a resident; False when this event was
    recorded already (WeChat retried it)."""
    done = await session.execute(
        insert_new(session, CampaignScan)
        .values(
            broadcast_id=broadcast_id,
            resident_id=resident_id,
            message_key=message_key,
            scanned_at=now,
        )
        .returning(CampaignScan.id)
    )
    return done.scalar() is not None


async def scanned_by(session: AsyncSession, broadcast_id: int) -> int:
    """How many residents scanned the campaign's poster (each once, however often)."""
    found = await session.scalar(
        select(func.count(func.distinct(CampaignScan.resident_id))).where(
            CampaignScan.broadcast_id == broadcast_id
        )
    )
    return int(found or 0)
