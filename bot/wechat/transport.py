"""HTTP requests whose failure must tell "never sent" from "may have arrived".

:func:`bot.wechat.errors.may_have_arrived` decides from the exception aiohttp raised
whether a failed request may still have been acted on. Two aiohttp defaults blur that
line, so the WeChat API client and the outbox's HTTP channels make their requests
through this module:

1. **The connect phase needs its own timeout** (:func:`timeout`). With
   ``ClientTimeout(total=…)`` alone, a connection that is not made before the total
   runs out (SYNs dropped by a firewall or a full listen backlog, a DNS lookup or TLS
   handshake that hangs, no free connection in the pool) raises a plain
   ``TimeoutError``: the same exception as a request that went out and got no answer
   in time. An unreachable WeChat then made every notice "sent, outcome unknown", and
   none was ever sent. A ``connect`` limit shorter than the total makes that phase
   raise ``aiohttp.ConnectionTimeoutError``, which is "not sent".

2. **A message sent at most once goes on a new connection** (:func:`request` with
   ``fresh=True``). A kept-alive connection from the pool may already be closed at the
   other end (its idle timeout ran out, the server restarted, a NAT forgot it) before
   our request is written; aiohttp then raises ``ServerDisconnectedError`` or a reset,
   exactly as for a connection dropped after the server read the request, and retries
   such a request itself only for idempotent methods. The alternatives were weighed:
   a keep-alive timeout shorter than the server's would need WeChat's idle timeout,
   which WeChat does not document, and cannot help against a server that closes for
   another reason or a middlebox that drops idle connections without a word; only a
   connection opened for this request cannot be stale. So the errors after it is open
   really do mean the request may have been read. The cost is a TCP (and TLS)
   handshake per message, a round trip or two: small next to WeChat's own answer time
   and to the pace of a broadcast. Calls that may be repeated (the token, reads, the
   menu, webhooks that dedupe by key) keep the caller's pooled session: a stale
   connection there is retried like any failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

CONNECT_SHARE = 0.5
"""The part of a request's total timeout that connecting (pool, DNS, TCP, TLS) may take.

Strictly less than the whole, so the connect limit fires first and says "not sent";
half leaves room for a lost SYN's first retransmission (after 1 s) within the API
client's 5 s, and the rest of the total for the answer."""


def timeout(total: float) -> aiohttp.ClientTimeout:
    """``total`` seconds for the whole request, of which connecting may take a share:
    a connection not made in time raises ``ConnectionTimeoutError`` (never sent)."""
    return aiohttp.ClientTimeout(total=total, connect=total * CONNECT_SHARE)


@contextlib.asynccontextmanager
async def request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    total: float,
    fresh: bool,
    **options: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``http.request(method, url, **options)`` with :func:`timeout` (``total``).

    ``fresh``: the request must not be repeated after an ambiguous outcome, so it goes
    on a connection opened for it and closed after it (see the module doc), not on
    one of ``http``'s pooled connections; nothing is left open afterwards.
    """
    limits = timeout(total)
    if not fresh:
        async with http.request(method, url, timeout=limits, **options) as response:
            yield response
        return
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as once,
        once.request(method, url, timeout=limits, **options) as response,
    ):
        yield response
