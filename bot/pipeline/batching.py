"""Group commit: many small database requests from concurrent tasks, run as one.

At thousands of messages a second, one transaction per message spends its time in
BEGIN/COMMIT and in hops to the driver's thread. A :class:`Batcher` lets each task
``submit`` its own request and await its own result, while one drain task runs
whatever has accumulated as a single call (one statement, one transaction). Under
light load a batch is one request and costs what a direct call would; under heavy
load batches grow by themselves, because requests queue while the previous batch is
in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class Batcher(Generic[T, R]):
    """Run ``run(requests) -> results`` (same length, same order) on accumulated requests."""

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_size: int = 200
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, request: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="batcher-drain")
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                try:
                    results = await self._run([request for request, _ in batch])
                except Exception as exc:  # every waiter learns of the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its waiter may have been cancelled
                        future.set_result(result)
        finally:
            self._drainer = None
            for _, future in self._pending:  # only when the drain itself was cancelled
                if not future.done():
                    future.cancel()
            self._pending.clear()

    async def close(self) -> None:
        """Wait for requests already submitted to finish (used at shutdown)."""
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
