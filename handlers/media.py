"""Messages that are not text: voice without recognition, images, places, links, and
events that need no answer."""

from __future__ import annotations

from bot.dispatch import Event, Kind, Predicate, Router
from handlers import texts

router = Router("media")


@router.on(Kind("voice"), Predicate(lambda msg, ctx: msg.is_voice_without_text))
async def unheard_voice() -> str:
    """Voice that WeChat recognised is handled as text (``msg.text``) by the other
    routers; this is for speech it could not make out."""
    return texts.VOICE_NOT_HEARD


@router.on(Kind("image"))
async def image() -> str:
    return texts.IMAGE_RECEIVED


@router.on(Kind("location"))
async def location() -> str:
    return texts.LOCATION_RECEIVED


@router.on(Kind("link"))
async def link() -> str:
    return texts.LINK_RECEIVED


@router.on(Kind("video", "shortvideo", "file", "miniprogrampage"))
async def unsupported() -> str:
    return texts.NOT_UNDERSTOOD_KIND


@router.on(Event("view", "location", "templatesendjobfinish", "masssendjobfinish", "scan"))
async def quiet_event() -> None:
    """Events that need no reply (answered ``success``)."""
    return None
