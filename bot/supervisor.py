"""``serve --workers N``: a pre-fork supervisor that keeps N workers serving.

The parent process does not serve. The CLI has it do once what every worker would
otherwise redo (imports, migrations, the catalog import check, jieba's dictionary,
the matchers), then :class:`Supervisor` forks the workers, which inherit all of it
and are serving a fraction of a second later. From then on the supervisor only
watches, in the spirit of gunicorn's arbiter:

* A dead worker is reaped at once (no zombie) and its death logged with its pid and
  exit status or signal.
* It is replaced: at once the first time; after 1 s, 2 s, 4 s … (at most 30 s) while
  the workers of its slot keep dying before they served ``healthy_after`` seconds,
  so a worker that cannot live is not restarted in a hot loop. A worker that served
  that long resets its slot's count.
* SIGTERM or SIGINT stop the workers gracefully (SIGTERM to each; SIGKILL to those
  still there after ``stop_timeout``); a second signal kills them at once.
* A supervisor killed outright (SIGKILL, the OOM killer) takes its workers with it:
  each is sent SIGTERM by the kernel when its parent dies (``PR_SET_PDEATHSIG``), so
  no orphan serves the port beside the next deployment.
* A worker that exits by itself before any worker ever served found a reason none
  can start (the port taken, the database gone): the supervisor stops the others and
  raises :class:`CannotStart` rather than restart forever.

Why the parent does not serve: whatever kills a worker (the OOM killer, a crash in a
C extension) must not take the supervisor with it, or nobody restarts anything. And
a process that forks must have no event loop or other threads running, as ``fork``
copies only the calling thread: the supervisor is a plain ``select`` loop over a
self-pipe that signals write to (``signal.set_wakeup_fd``) and the pipes on which
workers say they are ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.jobs.backoff import backoff

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CannotStart(Exception):
    """No worker could start; the message says how the first one ended."""


@dataclass(frozen=True)
class Backoff:
    """How long a slot waits before its next worker, given how its workers died."""

    first: float = 1.0
    """The pause after the second quick death in a row (the first restarts at once)."""
    maximum: float = 30.0
    healthy_after: float = 10.0
    """Seconds a worker must have served for its death not to count as a quick one."""

    def pause(self, quick_deaths: int) -> float:
        """The pause after ``quick_deaths`` deaths in a row (this one included)."""
        if quick_deaths <= 1:
            return 0.0
        return backoff(quick_deaths - 1, first=self.first, cap=self.maximum)


@dataclass(frozen=True)
class Assignment:
    """What a new worker is told: its slot, whether it replaces a dead worker, and how
    to say it is ready (once it accepts connections)."""

    slot: int
    replacement: bool
    ready: Callable[[], None]


@dataclass
class _Worker:
    slot: int
    pid: int
    ready_fd: int | None
    ready_at: float | None = None
    """When it said it serves (monotonic time); None before."""


@contextlib.contextmanager
def shared_metrics() -> Iterator[Path]:
    """A directory where every process of the deployment keeps its Prometheus values
    (``PROMETHEUS_MULTIPROC_DIR``, see bot/metrics.py), so that any worker's
    ``/metrics`` shows them all. Must be entered before anything imports
    prometheus_client, which picks its storage once, at import.

    An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is used and emptied first (values
    of an earlier run would be added to this one's); otherwise a temporary directory
    is made, and removed at the end."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="order-menu-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    try:
        yield directory
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(directory, ignore_errors=True)


def describe_exit(status: int) -> str:
    """``exited with status 3`` or ``was killed by SIGKILL``, from a wait status."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


class Supervisor:
    """Fork ``count`` workers running ``work`` and keep that many alive until stopped.

    ``on_exit(pid)`` is called for every worker reaped, ``on_restart()`` for every
    replacement started (the CLI counts them in ``/metrics``).
    """

    def __init__(
        self,
        count: int,
        work: Callable[[Assignment], None],
        *,
        backoff: Backoff | None = None,
        stop_timeout: float = 15.0,
        on_exit: Callable[[int], None] = lambda pid: None,
        on_restart: Callable[[], None] = lambda: None,
    ) -> None:
        self._count = count
        self._work = work
        self._backoff = backoff or Backoff()
        self._stop_timeout = stop_timeout
        self._on_exit = on_exit
        self._on_restart = on_restart
        self._workers: dict[int, _Worker] = {}
        self._quick_deaths = [0] * count
        self._due: dict[int, float] = {}
        """Slots waiting for a replacement, and when it is due (monotonic time)."""
        self._anyone_served = False
        self._cannot_start: str | None = None
        self._stop_requested = False
        self._wake_r = self._wake_w = -1
        self._supervisor_pid = os.getpid()

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Supervise until SIGTERM or SIGINT, then stop every worker and return.

        Raises :class:`CannotStart` when the workers cannot start at all."""
        self._supervisor_pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        handled = (signal.SIGCHLD, *STOP_SIGNALS)
        previous = {sig: signal.signal(sig, _note) for sig in handled}
        previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        try:
            log.info("supervisor (pid %d) starting %d workers", os.getpid(), self._count)
            for slot in range(self._count):
                self._spawn(slot, replacement=False)
            while not self._stop_requested and self._cannot_start is None:
                self._wait(self._next_timeout())
                self._restart_due()
        finally:
            self._stop()  # also when something went wrong here: no worker is left behind
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            for worker in self._workers.values():
                self._close_ready(worker)
        if self._cannot_start is not None:
            raise CannotStart(self._cannot_start)

    def _wait(self, timeout: float | None) -> None:
        """Sleep until a signal, a worker's word or ``timeout``; then act on what came."""
        ready_fds = {w.ready_fd: w for w in self._workers.values() if w.ready_fd is not None}
        readable, _, _ = select.select([self._wake_r, *ready_fds], [], [], timeout)
        for fd in readable:
            if fd in ready_fds:
                self._read_ready(ready_fds[fd])
        for signum in self._drain_signals():
            if signum in STOP_SIGNALS and not self._stop_requested:
                name = signal.Signals(signum).name
                log.info("supervisor: %s received, stopping the workers", name)
                self._stop_requested = True
        self._reap()

    def _next_timeout(self) -> float:
        # Also wake up now and then without a signal: reaping does not depend on
        # SIGCHLD arriving, only on the loop going round.
        if not self._due:
            return 5.0
        return max(0.0, min(5.0, min(self._due.values()) - time.monotonic()))

    def _drain_signals(self) -> list[int]:
        received = b""
        while True:
            try:
                chunk = os.read(self._wake_r, 512)
            except BlockingIOError:
                break
            if not chunk:
                break
            received += chunk
        return list(received)

    # --- workers ----------------------------------------------------------------------

    def _spawn(self, slot: int, *, replacement: bool) -> None:
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(ready_r)
            os.close(ready_w)
            raise
        if pid == 0:  # the worker; it never returns from here
            os.close(ready_r)
            self._become_worker(slot, replacement, ready_w)
        os.close(ready_w)
        self._workers[pid] = _Worker(slot, pid, ready_r)
        if replacement:
            self._hook(self._on_restart)
            log.info("worker %d restarted: pid %d", slot, pid)
        else:
            log.info("worker %d started: pid %d", slot, pid)

    def _become_worker(self, slot: int, replacement: bool, ready_w: int) -> None:
        """Run ``work`` in the forked child and leave with its exit status, never
        returning into the supervisor's stack (its ``finally`` blocks are not ours)."""
        status = 1
        try:
            _stop_with_parent(self._supervisor_pid)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            # Ctrl+C reaches the whole process group; the supervisor decides when its
            # workers stop (it sends SIGTERM). A serving worker handles both anyway.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            for worker in self._workers.values():
                self._close_ready(worker)

            def ready() -> None:
                with contextlib.suppress(OSError):  # the supervisor is gone: nobody asks
                    os.write(ready_w, b"1")

            self._work(Assignment(slot, replacement, ready))
            status = 0
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                status = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:
            log.exception("worker %d (pid %d) failed", slot, os.getpid())
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(status)

    def _read_ready(self, worker: _Worker) -> None:
        assert worker.ready_fd is not None
        try:
            said = os.read(worker.ready_fd, 64)
        except OSError:
            said = b""
        if said and worker.ready_at is None:
            worker.ready_at = time.monotonic()
            self._anyone_served = True
            log.info("worker %d (pid %d) is serving", worker.slot, worker.pid)
        if not said:  # the worker closed its end: it is exiting
            self._close_ready(worker)

    @staticmethod
    def _close_ready(worker: _Worker) -> None:
        if worker.ready_fd is not None:
            os.close(worker.ready_fd)
            worker.ready_fd = None

    def _reap(self) -> None:
        """Collect every worker that ended, so none stays a zombie."""
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            if worker is not None:
                self._ended(worker, status)

    def _ended(self, worker: _Worker, status: int) -> None:
        if worker.ready_fd is not None:  # it may have said "ready" just before dying
            readable, _, _ = select.select([worker.ready_fd], [], [], 0)
            if readable:
                self._read_ready(worker)
            self._close_ready(worker)
        self._hook(self._on_exit, worker.pid)
        how = describe_exit(status)
        if self._stop_requested:
            log.info("worker %d (pid %d) %s", worker.slot, worker.pid, how)
            return
        now = time.monotonic()
        served = now - worker.ready_at if worker.ready_at is not None else 0.0
        # One that gave up by itself (not killed) before any worker ever served found a
        # reason that holds for all of them: restarting would only repeat it.
        gave_up = os.WIFEXITED(status) and status != 0
        if gave_up and worker.ready_at is None and not self._anyone_served:
            log.error("worker %d (pid %d) %s while starting", worker.slot, worker.pid, how)
            self._cannot_start = (
                f"no worker could start: worker {worker.slot} (pid {worker.pid}) {how}"
            )
            return
        slot = worker.slot
        if served >= self._backoff.healthy_after:
            self._quick_deaths[slot] = 0
        self._quick_deaths[slot] += 1
        pause = self._backoff.pause(self._quick_deaths[slot])
        self._due[slot] = now + pause
        after = f"after serving {served:.0f} s" if worker.ready_at is not None else "before serving"
        if pause:
            log.error(
                "worker %d (pid %d) %s %s; restarting it in %.1f s (%d quick deaths in a row)",
                slot,
                worker.pid,
                how,
                after,
                pause,
                self._quick_deaths[slot],
            )
        else:
            log.error("worker %d (pid %d) %s %s; restarting it now", slot, worker.pid, how, after)

    @staticmethod
    def _hook(hook: Callable[..., None], *args: int) -> None:
        """Bookkeeping (metrics) must never stop the supervision."""
        try:
            hook(*args)
        except Exception:
            log.exception("supervisor: %s failed", getattr(hook, "__name__", hook))

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, due in sorted(self._due.items()):
            if due <= now and not self._stop_requested:
                del self._due[slot]
                try:
                    self._spawn(slot, replacement=True)
                except OSError as exc:  # fork refused: out of memory or processes
                    self._quick_deaths[slot] += 1
                    pause = self._backoff.pause(self._quick_deaths[slot]) or self._backoff.first
                    self._due[slot] = now + pause
                    log.error(
                        "worker %d could not be started (%s); trying again in %.1f s",
                        slot,
                        exc,
                        pause,
                    )

    # --- stopping ---------------------------------------------------------------------

    def _stop(self) -> None:
        """SIGTERM every worker, wait up to ``stop_timeout``, SIGKILL the rest, reap all."""
        self._stop_requested = True
        self._due.clear()
        if not self._workers:
            return
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while self._workers:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([self._wake_r], [], [], min(left, 0.5))
            if readable and any(s in STOP_SIGNALS for s in self._drain_signals()):
                log.warning("supervisor: asked again to stop; killing the workers now")
                break
            self._reap()
        for worker in self._workers.values():
            log.warning(
                "worker %d (pid %d) still running after the stop timeout: killing it",
                worker.slot,
                worker.pid,
            )
        self._signal_all(signal.SIGKILL)
        for pid in list(self._workers):
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(pid, 0)
                self._ended(self._workers.pop(pid), status)
        log.info("supervisor (pid %d): all workers stopped", os.getpid())

    def _signal_all(self, signum: int) -> None:
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _stop_with_parent(supervisor_pid: int) -> None:
    """In a new worker: be sent SIGTERM when the supervisor dies, however it dies.

    A supervisor killed outright (SIGKILL, the OOM killer) cannot stop its workers,
    and orphans would go on serving the port beside the next deployment's workers,
    with no one to restart them. Linux delivers a chosen signal to a child when its
    parent exits (``PR_SET_PDEATHSIG``); should the supervisor have died between
    the fork and this call, the worker sees it has another parent and leaves at once.
    Elsewhere (no ``prctl``) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("worker %d: cannot ask to be stopped with the supervisor", os.getpid())
    if os.getppid() != supervisor_pid:
        raise SystemExit(0)


def _note(signum: int, frame: object) -> None:
    """Signals only wake the loop (through the wakeup fd); the loop acts on them."""
