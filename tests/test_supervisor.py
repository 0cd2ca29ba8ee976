"""``serve --workers N`` keeps N workers serving: a worker the OS kills is reaped and
replaced (with growing pauses if it keeps dying), the restarts are counted in
/metrics, and stopping the supervisor stops every worker.

Real processes on PostgreSQL (the engine for several workers); workers are killed
with real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ordering_catalog import write_catalog
from tests.servers import Process, free_port, post, run_serve, spawn_serve


@dataclass
class Deployment:
    supervisor: Process
    base: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def deployment(
    db_url: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """``serve --workers 2`` on a real port, its log (INFO) in a file; a test may add
    options to the command (indirect parametrisation)."""
    if backend != "postgresql":
        pytest.skip("serve --workers N is for PostgreSQL")
    log = tmp_path / "serve.log"
    process, base = spawn_serve(
        db_url,
        tmp_path,
        "--workers",
        "2",
        *getattr(request, "param", ()),
        log=log,
        CATALOG_PATH=str(write_catalog(tmp_path)),
        LOG_LEVEL="INFO",
    )
    try:
        yield Deployment(process, base, log)
    finally:
        # Never leave a worker behind, should the supervisor fail to stop them; and
        # never signal a process that merely reuses a worker's pid.
        workers = {pid: started(pid) for pid in children(process.pid)}
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for pid, since in workers.items():
            if since is not None and started(pid) == since:
                os.kill(pid, signal.SIGKILL)


def healthz_pid(base: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
            return int(json.loads(reply.read())["pid"])
    except OSError:
        return None


def serving_pids(base: str, count: int, *, timeout: float, exclude: set[int]) -> set[int]:
    """``count`` distinct pids answering /healthz, none in ``exclude``; the connections
    are spread over the workers by the kernel (SO_REUSEPORT), so ask until seen."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = healthz_pid(base)
        if pid is not None and pid not in exclude:
            seen.add(pid)
            if len(seen) >= count:
                return seen
        else:
            time.sleep(0.05)
    raise AssertionError(f"{count} workers did not answer within {timeout} s; saw {seen}")


def state(pid: int) -> str | None:
    """The process's state letter (R, S, Z …); None when it is gone altogether."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def started(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``, zombies included."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def wait_gone(pid: int, timeout: float) -> None:
    """Until ``pid`` is gone altogether: reaped by its parent, not left a zombie (Z)."""
    deadline = time.monotonic() + timeout
    while (now := state(pid)) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still there after {timeout} s (state {now})")
        time.sleep(0.05)


def scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def test_a_worker_killed_by_the_os_is_reaped_and_replaced(deployment: Deployment) -> None:
    supervisor = deployment.supervisor
    first = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    victim = min(first)
    survivor = (first - {victim}).pop()
    os.kill(victim, signal.SIGKILL)

    # Reaped: gone, not left a zombie.
    wait_gone(victim, 10)
    # A new worker, with a new pid, answers; capacity is two workers again.
    [replacement] = serving_pids(deployment.base, 1, timeout=20, exclude=first)
    assert serving_pids(deployment.base, 2, timeout=20, exclude={victim}) == {
        survivor,
        replacement,
    }
    assert children(supervisor.pid) == {survivor, replacement}
    assert all(state(pid) != "Z" for pid in children(supervisor.pid))

    log = deployment.text()
    assert f"(pid {victim}) was killed by SIGKILL" in log, log
    assert f"restarted: pid {replacement}" in log, log
    # Whichever worker answers, it counts the deployment's one restart.
    for _ in range(8):
        assert re.search(r"^om_worker_restarts_total 1\.0$", scrape(deployment.base), re.M)


def test_any_worker_reports_the_whole_deployments_counters(deployment: Deployment) -> None:
    """Each scrape reaches one worker at random; each shows every worker's count,
    including the count of a worker that has since died."""
    workers = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    for n in range(10):  # each on a new connection: the kernel spreads them
        post(deployment.base, f"o_metrics_{n}", "帮助", 9_100_000 + n)
    os.kill(min(workers), signal.SIGKILL)
    serving_pids(deployment.base, 2, timeout=30, exclude={min(workers)})
    for _ in range(8):
        body = scrape(deployment.base)
        assert re.search(r'^om_messages_total\{kind="text"\} 10\.0$', body, re.M), body


def new_worker(deployment: Deployment, known: set[int], timeout: float) -> int:
    """The pid of the next worker the supervisor logs having started, not in ``known``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for started in re.finditer(r"restarted: pid (\d+)", deployment.text()):
            if int(started[1]) not in known:
                return int(started[1])
        time.sleep(0.02)
    raise AssertionError(f"no new worker within {timeout} s:\n{deployment.text()}")


def test_a_worker_that_keeps_dying_is_restarted_after_growing_pauses(
    deployment: Deployment,
) -> None:
    known = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    victim, survivor = sorted(known)
    pauses: list[float] = []
    for _ in range(3):  # kill each replacement as soon as it is there
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        victim = new_worker(deployment, known, timeout=30)
        pauses.append(time.monotonic() - killed)
        known.add(victim)

    # At once, then after 1 s and 2 s: each pause at least the back-off, and
    # growing, so a worker that cannot live is never restarted in a hot loop.
    assert pauses[1] >= 1.0 and pauses[2] >= 2.0, pauses
    assert pauses[0] < pauses[2] - 1, pauses
    log = deployment.text()
    for pause in ("1.0", "2.0"):
        assert f"restarting it in {pause} s" in log, log
    # The last replacement lives: the service is back to two workers.
    serving = serving_pids(deployment.base, 2, timeout=30, exclude=known - {victim, survivor})
    assert serving == {victim, survivor}


def test_stopping_the_supervisor_stops_every_worker(deployment: Deployment) -> None:
    supervisor = deployment.supervisor
    workers = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0
    for pid in workers:
        assert state(pid) is None, f"worker {pid} is still there ({state(pid)})"
    assert "all workers stopped" in deployment.text()


def test_workers_stop_when_the_supervisor_is_killed(deployment: Deployment) -> None:
    """Killed outright, the supervisor cannot stop its workers: the kernel tells them
    (they would otherwise serve on as orphans nobody restarts)."""
    supervisor = deployment.supervisor
    workers = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    supervisor.kill()
    supervisor.wait(10)
    deadline = time.monotonic() + 20
    # Gone, or exited and waiting for init to reap it (a container's first process
    # may never do that): either way no longer running.
    while any(state(pid) not in (None, "Z") for pid in workers):
        assert time.monotonic() < deadline, {pid: state(pid) for pid in workers}
        time.sleep(0.05)
    assert healthz_pid(deployment.base) is None  # nothing serves the port any more


@pytest.mark.parametrize("deployment", [("--stop-timeout", "2")], indirect=True)
def test_a_worker_that_ignores_the_stop_is_killed_after_the_timeout(
    deployment: Deployment,
) -> None:
    supervisor = deployment.supervisor
    workers = serving_pids(deployment.base, 2, timeout=120, exclude=set())
    stuck = min(workers)
    os.kill(stuck, signal.SIGSTOP)  # a stopped process does not act on SIGTERM
    began = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(60) == 0
    waited = time.monotonic() - began
    assert 2 <= waited < 10, waited  # given its --stop-timeout to stop, not the default 15 s
    assert all(state(pid) is None for pid in workers)
    assert f"(pid {stuck}) still running after the stop timeout: killing it" in deployment.text()


def test_workers_that_cannot_start_stop_the_supervisor_with_one_error(
    db_url: str, backend: str, tmp_path: Path
) -> None:
    """The port is taken by another program: no worker can listen, so the
    supervisor gives up instead of restarting them forever."""
    import socket

    if backend != "postgresql":
        pytest.skip("serve --workers N is for PostgreSQL")
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_serve(
            db_url,
            tmp_path,
            "--port",
            str(port),
            "--workers",
            "2",
            CATALOG_PATH=str(write_catalog(tmp_path)),
        )
    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: no worker could start: worker ")
    assert "Traceback" not in result.stderr


def test_a_broken_catalog_stops_serve_with_workers_before_any_worker_starts(
    db_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("serve --workers N is for PostgreSQL")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        write_catalog(tmp_path).read_text(encoding="utf-8").replace("unit: property", "unit: x"),
        encoding="utf-8",
    )
    result = run_serve(
        db_url,
        tmp_path,
        "--port",
        str(free_port()),
        "--workers",
        "2",
        CATALOG_PATH=str(broken),
        LOG_LEVEL="INFO",
    )
    assert result.returncode == 1
    assert "unknown unit 'x'" in result.stderr
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(
        rf"error: {re.escape(str(broken))}: \d+ problem\(s\) in the catalog; not started", last
    )
    assert "worker 0 started" not in result.stderr  # nothing was forked
    assert "Traceback" not in result.stderr
