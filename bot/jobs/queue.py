"""Named jobs on a timer, on APScheduler 3: interval jobs that poll our own tables.

Reminders and notifications are rows in the database, not APScheduler jobs: its
SQLAlchemy job store needs a synchronous driver, blocks the event loop on every
added job and drops jobs that missed their time by more than a second. Here
APScheduler only says "poll now"; what is due is decided by the rows, so nothing is
lost while the service is down, and each poll job runs one instance at a time.
Errors of any job go to one listener that logs them; ``stop`` waits for jobs that are
running, for a grace period, then cancels those still running.

A job runs in every process unless it is registered ``leader_only``: most jobs claim
their rows in a way that is safe across processes (``bot.jobs.rows``), so every
process helps and no community waits for one process's turn. The few that must run
in one place say why where they are registered (``bot.app.scheduler_context``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class _SkippedRun(logging.Filter):
    """A poll skipped because the previous one is still running is how the jobs are
    meant to behave (one at a time), not a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedRun())
logging.getLogger("apscheduler.executors.default").addFilter(_SkippedRun())
# Every poll would otherwise log two INFO lines a second; failures still get through.
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)

Job = Callable[[], Awaitable[object]]


class JobQueue:
    def __init__(self, gate: Callable[[], bool] | None = None) -> None:
        """``gate``: ``leader_only`` jobs run only while it says yes (leadership, see
        ``bot.jobs.leader``)."""
        self._gate = gate or (lambda: True)
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = False
        self._leader_only: set[str] = set()

    def every(
        self,
        seconds: float,
        name: str,
        job: Job,
        *,
        leader_only: bool = False,
        at_start: bool = False,
    ) -> None:
        """Run ``job`` every ``seconds``, one run at a time; ``name`` identifies it.

        ``leader_only``: only in the process that holds the leadership, for work that
        must happen in one place (say why where it is registered); otherwise in every
        process, leader or not. ``at_start``: the first run as soon as the queue
        starts, not ``seconds`` later."""
        if name in self._jobs:
            raise ValueError(f"a job named {name!r} is registered already")
        self._jobs[name] = job
        if leader_only:
            self._leader_only.add(name)
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=seconds,
            args=[name],
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **({"next_run_time": dt.datetime.now(dt.UTC)} if at_start else {}),
        )

    async def tick(self, name: str) -> object:
        """What the timer does for ``name``: run it, unless it is ``leader_only`` and
        this process does not lead (then None)."""
        if name in self._leader_only and not self._gate():
            return None
        return await self._run(name)

    def runs_here(self, name: str) -> bool:
        """Whether the timer runs ``name`` in this process now."""
        return name not in self._leader_only or self._gate()

    async def run_now(self, name: str) -> object:
        """Run a job at once, leader or not (tests, and start-up catching up on what
        is overdue)."""
        return await self._run(name)

    async def _run(self, name: str) -> object:
        self._running += 1
        self._idle.clear()
        # A task of its own, so that ``stop`` can cancel the job and nothing else.
        task = asyncio.ensure_future(self._jobs[name]())
        self._tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if self._stopping:
                # Stopped on purpose (by ``stop``, or the timer's own shutdown cancelling
                # the run): not an error of the job, and nothing for the timer to log.
                log.info("scheduled job %s cancelled at shutdown", name)
                return None
            raise
        finally:
            self._tasks.discard(task)
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    def _on_error(self, event: JobExecutionEvent) -> None:
        log.error("scheduled job %s failed", event.job_id, exc_info=event.exception)

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop polling; wait up to ``grace`` seconds for jobs that are running, then
        cancel them and wait for them to end.

        Cancelling is safe for every job here, as a SIGKILL would be: each commits
        its steps one by one, and leaves what it had not done yet to the next poll
        (an outbox row or broadcast delivery it was sending becomes ``unknown``,
        the ones it had not tried stay pending). Left running, a job would go on
        while the HTTP session and the database engine it uses are closed under it.
        """
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
            return
        except TimeoutError:
            log.warning(
                "scheduled jobs still running after %.0f s at shutdown: cancelling %d",
                grace,
                len(self._tasks),
            )
        for task in list(self._tasks):
            task.cancel()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.error("scheduled jobs still running %.0f s after being cancelled", grace)
