#!/usr/bin/env python3
"""Where a ``serve`` worker's start-up time goes, and how long until it answers.

    .venv/bin/python bench/worker_start.py [--runs 5] [--catalog FILE] \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB

Measured against the given database (migrated and the catalog imported by a first
start, as in a deployment where another worker started first):

* the phases of one start, in a fresh interpreter: imports, the migration check, the
  catalog import check, jieba's dictionary, the matcher, the rest of the app's
  start-up (pipelines, scheduler, leader election) and binding the port. The phases
  are timed by wrapping the functions that do them; nothing else is changed;
* ``serve``: wall time from spawning ``python -m bot serve`` to its first ``/healthz``
  200, the median and worst of ``--runs`` fresh processes;
* ``serve --workers 2``: from spawning it to both workers answering ``/healthz``
  (two distinct pids); then from SIGKILL of one worker to a new worker answering;
  and, from the supervisor's log, each worker's time from fork to serving.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

PHASES: list[tuple[str, float]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_ready(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return time.perf_counter() - started
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"serve exited with status {process.returncode}") from None
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(30)


def pids_answering(base: str, want: int, known: set[int], timeout: float) -> set[int] | None:
    """Poll ``/healthz`` until ``want`` pids other than ``known`` answered; None on timeout."""
    seen: set[int] = set()
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as reply:
                pid = int(json.loads(reply.read())["pid"])
        except OSError:
            time.sleep(0.01)
            continue
        if pid not in known:
            seen.add(pid)
            if len(seen) >= want:
                return seen
    return None


def workers_to_ready(env: dict[str, str]) -> tuple[float, float | None, list[float]]:
    """Seconds until both workers answer; then from killing one to its replacement
    answering; and each worker's fork-to-serving time, from the supervisor's log."""
    import tempfile

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            both = pids_answering(base, 2, set(), 120)
            if both is None:
                raise SystemExit("serve --workers 2: two workers never answered")
            ready = time.perf_counter() - started
            # Old code: the parent serves too and spawns one child; kill one that is not it.
            victim = max(both - {process.pid})
            killed = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            replaced = pids_answering(base, 1, both, 30)
            time.sleep(0.2)  # the supervisor's log line may follow the first answer
        finally:
            process.terminate()
            process.wait(30)
        log.seek(0)
        forks = fork_to_serving(log.read())
    return ready, (time.perf_counter() - killed if replaced else None), forks


def fork_to_serving(log: str) -> list[float]:
    """Seconds from "worker N started: pid P" to "(pid P) is serving", per worker."""
    import datetime as dt
    import re

    def at(line: str) -> float:
        return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    forked: dict[int, float] = {}
    durations = []
    for line in log.splitlines():
        if found := re.search(r"started: pid (\d+)$", line):
            forked[int(found[1])] = at(line)
        elif (found := re.search(r"\(pid (\d+)\) is serving$", line)) and int(found[1]) in forked:
            durations.append(at(line) - forked[int(found[1])])
    return durations


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (sync or async), recording its duration under ``name``."""
    import inspect

    if inspect.iscoroutinefunction(function):

        async def wrapper_async(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                PHASES.append((name, time.perf_counter() - began))

        return wrapper_async

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PHASES.append((name, time.perf_counter() - began))

    return wrapper


def phases() -> None:
    """One start-up in this process (run in a fresh interpreter: imports count)."""
    began = time.perf_counter()
    import asyncio
    import logging

    logging.basicConfig(level=logging.ERROR)

    from aiohttp import web

    import bot.app
    import bot.serve  # what serve imports, like the CLI does
    import catalog.live
    import catalog.segment
    import storage.migrate
    from bot import leader, startup
    from bot.config import load_settings

    PHASES.append(("imports", time.perf_counter() - began))
    storage.migrate.upgrade = timed("migrations check", storage.migrate.upgrade)
    startup._prepare_one = timed("catalog import check", startup._prepare_one)
    catalog.segment.base_tokenizer = timed("jieba dictionary", catalog.segment.base_tokenizer)
    catalog.live.matcher_for = timed("matcher (incl. jieba)", catalog.live.matcher_for)
    leader.Leadership.start = timed("leader election", leader.Leadership.start)

    async def start() -> None:
        settings = load_settings()
        app = bot.app.create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await timed("app start-up (all)", runner.setup)()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await timed("bind", site.start)()
        await runner.cleanup()

    asyncio.run(start())
    PHASES.append(("total", time.perf_counter() - began))
    for name, seconds in PHASES:
        print(f"  {name:<24} {seconds:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--catalog", default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--phases-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    env.update(DATABASE_URL=args.database_url, WECHAT_TOKEN="bench-token", LOG_LEVEL="ERROR")
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever the venv installed
    if args.catalog:
        env["CATALOG_PATH"] = args.catalog
    if args.phases_only:
        phases()
        return
    time_to_ready(env)  # the first start migrates and imports; later ones only check
    print("phases of one start (in a fresh interpreter):")
    subprocess.run(
        [sys.executable, __file__, "--phases-only", "--database-url", args.database_url],
        env=env,
        cwd=ROOT,
        check=True,
    )
    readies = [time_to_ready(env) for _ in range(args.runs)]
    print(
        f"serve: spawn to first /healthz, {args.runs} runs: "
        f"median {statistics.median(readies):.2f} s, worst {max(readies):.2f} s"
    )
    runs = [workers_to_ready(env) for _ in range(args.runs)]
    both = [ready for ready, _, _ in runs]
    print(
        f"serve --workers 2: spawn to both workers answering, {args.runs} runs: "
        f"median {statistics.median(both):.2f} s, worst {max(both):.2f} s"
    )
    replaced = [after for _, after, _ in runs if after is not None]
    if len(replaced) < len(runs):
        print(f"  a killed worker was not replaced within 30 s in {len(runs) - len(replaced)} runs")
    if replaced:
        print(
            f"  SIGKILL of a worker to a new worker answering: "
            f"median {statistics.median(replaced):.2f} s, worst {max(replaced):.2f} s"
        )
    forks = [seconds for _, _, durations in runs for seconds in durations]
    if forks:
        print(
            f"  a worker's fork to serving ({len(forks)} workers): "
            f"median {statistics.median(forks):.2f} s, worst {max(forks):.2f} s"
        )


if __name__ == "__main__":
    main()
