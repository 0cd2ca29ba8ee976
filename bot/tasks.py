"""Background tasks that are tracked, logged when they fail, and stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Every task the service starts outside a request lives here.

    A task that fails is logged with its name (asyncio would only complain when the
    task is garbage-collected, if ever). ``close`` lets running tasks finish within
    a grace period, then cancels the rest, so shutdown never hangs and never drops a
    task silently.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: set[asyncio.Task[Any]] = set()
        self._closing = False

    def spawn(
        self, coroutine: Coroutine[Any, Any, T], name: str, *, loop: bool = False
    ) -> asyncio.Task[T]:
        """Start a task. ``loop=True``: a service loop that runs until shutdown, which
        cancels it at once instead of waiting for it."""
        if self._closing:
            coroutine.close()
            raise RuntimeError(f"shutting down: not starting {name}")
        task = asyncio.create_task(coroutine, name=name)
        (self._loops if loop else self._tasks).add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._loops.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks) + len(self._loops)

    async def close(self, grace: float = 5.0) -> None:
        self._closing = True
        for task in self._loops:
            task.cancel()
        if self._loops:
            await asyncio.wait(set(self._loops), timeout=grace)
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace)
