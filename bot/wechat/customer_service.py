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
from typing import Protocol

log = logging.getLogger(__name__)


class CustomerService(Protocol):
    """WeChat's customer-service API, as the outbox uses it."""

    async def send_text(self, openid: str, text: str) -> None: ...


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

    async def send_text(self, openid: str, text: str) -> None:
        log.info("late reply to %s (no WeChat credentials; kept locally): %s", openid, text)
        self.sent.append(SentLater(next(self._seq), openid, text))

    def after(self, seq: int, openid: str | None = None) -> list[SentLater]:
        return [m for m in self.sent if m.seq > seq and openid in (None, m.openid)]
