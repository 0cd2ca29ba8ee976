"""The one backoff computation of the service: how long to wait after a failure.

Every retry in the service (outbox rows, broadcast deliveries, WeChat API calls, the
supervisor's restarts of a dying worker) waits ``first`` doubled per failure, never
more than ``cap``. ``jitter`` takes a random fraction of up to that much off the
wait, so clients that failed together do not retry together; the cap stays a bound.
"""

from __future__ import annotations

import random


def backoff(failures: int, *, first: float, cap: float, jitter: float = 0.0) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1 for the first):
    ``first``, then twice that, … at most ``cap``; with ``jitter`` (0 to 1), between
    ``(1 - jitter)`` times that and that."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter {jitter}: must be between 0 and 1")
    exponent = min(max(failures, 1) - 1, 64)  # 2**64 seconds is past any cap
    delay = min(cap, first * 2.0**exponent)
    return delay * (1.0 - jitter * random.random()) if jitter else delay
