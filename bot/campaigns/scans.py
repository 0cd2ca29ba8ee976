"""A resident scanned a campaign poster's QR code: they get that campaign's topic.

The poster went round a 楼栋群 because the campaign matters there, so whoever scans it
is subscribed to its topic (反诈, 防溺水 …) and answered with the campaign itself.
The scan is recorded once per WeChat event (its message key): a retried event
neither counts twice nor does anything twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.qrcodes import campaign_of
from catalog import topics as campaign_topics
from catalog.model import Catalog
from storage.repositories import campaigns, residents, subscriptions


@dataclass(frozen=True)
class Scanned:
    """The campaign whose poster was scanned, as the resident is told it."""

    topic: str
    title: str
    text: str


async def poster_scanned(
    session: AsyncSession,
    catalog: Catalog,
    openid: str,
    event_key: str,
    message_key: str,
    now: dt.datetime,
) -> Scanned | None:
    """Subscribe the resident to the campaign's topic and record the scan; None when
    the key is no campaign poster's of this community."""
    campaign_id = campaign_of(event_key)
    if campaign_id is None:
        return None
    row = await campaigns.campaign(session, catalog.community_id, campaign_id)
    if row is None:
        return None
    resident = await residents.resident_for(session, catalog.community_id, openid)
    if await campaigns.record_scan(session, row.id, resident.id, message_key, now):
        await subscriptions.subscribe(session, resident.id, [row.topic])
    names = {t.id: t.name for t in campaign_topics.topics(catalog)}
    return Scanned(topic=names.get(row.topic, "社区宣传"), title=row.title, text=row.text)
