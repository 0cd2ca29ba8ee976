"""The QR code on a campaign's poster: a permanent scene code of the community's
account, so that a scan brings the resident to the account, and tells which campaign
brought them (``handlers.campaign_scans``).

The code is asked of WeChat once per campaign and kept (``campaign_qrcodes``); the
request is made outside any transaction, and a second request for the same scene
(two staff opening the kit at once) gets the same code back. Without WeChat
credentials (development, the demo) there is no account to scan back to: the poster
carries a stand-in that says which scene it stands for, and nothing is kept, so the
real code is made once the account is configured.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.wechat.api import WeChatAPI
from bot.wechat.customer_service import CustomerService
from storage.repositories import campaigns

SCENE_PREFIX = "campaign-"
SUBSCRIBE_PREFIX = "qrscene_"
"""WeChat's prefix of the scene in the EventKey of a ``subscribe`` by QR code."""
DEV_URL = "dev-qrcode:scene={scene}"
"""The stand-in a poster carries without WeChat credentials: no app opens it."""


def scene_of(campaign_id: int) -> str:
    return f"{SCENE_PREFIX}{campaign_id}"


def campaign_of(event_key: str) -> int | None:
    """The campaign whose poster was scanned, from a subscribe (``qrscene_campaign-12``)
    or scan (``campaign-12``) event's key; None for any other key."""
    scene = event_key.removeprefix(SUBSCRIBE_PREFIX)
    number = scene.removeprefix(SCENE_PREFIX)
    if scene == number or not number.isascii() or not number.isdigit() or len(number) > 12:
        return None
    return int(number)


async def poster_url(
    sessionmaker: async_sessionmaker[AsyncSession],
    account: CustomerService,
    campaign_id: int,
) -> str:
    """What the campaign's poster code carries. Raises
    :class:`~bot.wechat.errors.WeChatError` when WeChat cannot make it now."""
    async with sessionmaker() as session:
        kept = await campaigns.qrcode_of(session, campaign_id)
    if kept is not None:
        return kept.url
    scene = scene_of(campaign_id)
    if not isinstance(account, WeChatAPI):
        return DEV_URL.format(scene=scene)
    ticket, url = await account.create_qrcode(scene)
    async with sessionmaker.begin() as session:
        kept = await campaigns.keep_qrcode(session, campaign_id, scene, ticket, url)
        return kept.url
