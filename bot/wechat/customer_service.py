"""Where replies go when they cannot be the passive reply: WeChat's customer-service
message API, or, without credentials, a local stand-in for development.

The outbox worker (``bot.jobs.outbox``) sends late replies and notifications to
residents through an account's :class:`CustomerService`; ``bot.wechat.api.WeChatAPI``
is the real one.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.wechat.api import MassAccepted

log = logging.getLogger(__name__)


class CustomerService(Protocol):
    """WeChat's customer-service API, as the outbox uses it."""

    async def send_text(self, openid: str, text: str) -> None: ...


@runtime_checkable
class MassSender(Protocol):
    """WeChat's mass send (群发) and its preview, as campaigns use them."""

    async def mass_send(
        self, openids: list[str], text: str, client_msg_id: str
    ) -> MassAccepted: ...

    async def mass_preview(self, text: str, *, wxname: str) -> None: ...


@dataclass(frozen=True)
class SentLater:
    seq: int
    openid: str
    text: str


class DevOutbox:
    """Stands in for the customer-service API when no WeChat credentials are set
    (development, ``order-menu chat``, the simulator): late replies are kept here,
    numbered, and logged; ``GET /dev/outbox`` hands them out."""

    def __init__(self, size: int = 1000) -> None:
        self.sent: deque[SentLater] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._mass: dict[str, int] = {}

    async def send_text(self, openid: str, text: str) -> None:
        log.info("late reply to %s (no WeChat credentials; kept locally): %s", openid, text)
        self.sent.append(SentLater(next(self._seq), openid, text))

    async def mass_send(self, openids: list[str], text: str, client_msg_id: str) -> MassAccepted:
        """Each follower of the list gets the text here, once per ``client_msg_id``,
        as WeChat would deliver a mass send."""
        known = self._mass.get(client_msg_id)
        if known is not None:
            return MassAccepted(known, None, repeated=True)
        msg_id = self._mass[client_msg_id] = next(self._seq)
        log.info("mass send %s to %d followers (kept locally)", client_msg_id, len(openids))
        for openid in openids:
            self.sent.append(SentLater(next(self._seq), openid, text))
        return MassAccepted(msg_id, None)

    async def mass_preview(self, text: str, *, wxname: str) -> None:
        log.info("mass-send preview for %s (kept locally): %s", wxname, text)
        self.sent.append(SentLater(next(self._seq), f"preview:{wxname}", text))

    def after(self, seq: int, openid: str | None = None) -> list[SentLater]:
        return [m for m in self.sent if m.seq > seq and openid in (None, m.openid)]
