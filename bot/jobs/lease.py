"""Leases: how long a claim on a row outlives a worker that stopped.

A lease is not a bound on the work. A row can take longer than any fixed lease (a
WeChat API call with its own attempts, backoff and token refresh; a recipient's
messages one after the other), so a worker renews the lease on what it still holds
every ``renew_every`` seconds while it works (:meth:`Lease.kept`). Two renewals may
fail (a busy database) before the claim is lost; and a lost claim costs no duplicate,
because every row checks, just before its attempt and when its outcome is recorded,
that it is still this worker's (see ``bot.jobs.outbox`` and ``bot.jobs.broadcasts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.wechat.errors import describe

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, length: dt.timedelta, renew_every: float | None = None) -> None:
        """``renew_every``: seconds between renewals, at most a third of ``length``
        (default a quarter)."""
        self.length = length
        self.renew_every = length.total_seconds() / 4 if renew_every is None else renew_every
        if not 0 < self.renew_every * 3 <= length.total_seconds():
            raise ValueError(
                f"renew_every {renew_every}: must be positive, at most a third of {length}"
            )

    def until(self, now: dt.datetime) -> dt.datetime:
        """When a claim taken or renewed at ``now`` runs out."""
        return now + self.length

    @contextlib.asynccontextmanager
    async def kept(self, renew: Callable[[], Awaitable[object]], what: str) -> AsyncIterator[None]:
        """While the block runs, call ``renew`` every ``renew_every`` seconds (it renews
        the claim on what is still held); a renewal that fails is logged and the next
        one tried. ``what`` names the rows for the log."""
        task = asyncio.create_task(self._keep(renew, what), name=f"lease of {what}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self, renew: Callable[[], Awaitable[object]], what: str) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await renew()
            except Exception as exc:  # the next renewal may get through
                log.warning("could not renew the claim on %s: %s", what, describe(exc))
