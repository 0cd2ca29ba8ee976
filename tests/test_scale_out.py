"""Two server processes on one database: WeChat's retry of a message reaching the
other process still places one order, and both answer with the same order code."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import models
from storage.engine import create_engine
from tests.ordering_catalog import write_catalog
from tests.test_webhook_fuzz import free_port
from tests.wechat_server import sign

TOKEN = "scale-out-token"
CODE = re.compile(r"订单号：([2-9A-Z]{6})")


def start_servers(
    db_url: str, tmp_path: Path, name: str, count: int = 2, **settings: str
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``count`` ``order-menu serve`` processes on one database, started one after the
    other (the first one migrates), each in a directory of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    env.update(
        DATABASE_URL=db_url,
        WECHAT_TOKEN=TOKEN,
        LOG_LEVEL="ERROR",
        CATALOG_PATH=str(write_catalog(tmp_path)),
        **settings,
    )
    processes, bases = [], []
    for n in range(count):
        port = free_port()
        workdir = tmp_path / f"{name}{n}"
        workdir.mkdir()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
        wait_healthy(bases[-1])
    return processes, bases


def stop_servers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(15)


@pytest.fixture
def two_servers(db_url: str, tmp_path: Path) -> Iterator[list[str]]:
    processes, bases = start_servers(db_url, tmp_path, "p")
    try:
        yield bases
    finally:
        stop_servers(processes)


def wait_healthy(base: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not start")


def post(base: str, openid: str, content: str, msg_id: int) -> str:
    timestamp, nonce = str(int(time.time())), f"n{msg_id}"
    query = urllib.parse.urlencode(
        {"timestamp": timestamp, "nonce": nonce, "signature": sign(TOKEN, timestamp, nonce)}
    )
    xml = (
        f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
        f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
    request = urllib.request.Request(f"{base}/wechat?{query}", data=xml.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=15) as reply:
        return reply.read().decode()


async def test_a_retry_on_the_other_process_places_one_order(
    two_servers: list[str], db_url: str
) -> None:
    first, second = two_servers
    ids = iter(range(7_000_000, 7_000_100))
    for line in ("水管爆了", "1栋", "13899990000"):
        await asyncio.to_thread(post, first, "o_two", line, next(ids))
    confirm = next(ids)
    replies = await asyncio.gather(
        *(
            asyncio.to_thread(post, base, "o_two", "确认", confirm)
            for base in (first, second, first, second)
        )
    )
    codes = {found[1] for reply in replies if (found := CODE.search(reply))}
    assert len(codes) == 1, replies
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            orders = await connection.scalar(select(func.count()).select_from(models.Order))
    finally:
        await engine.dispose()
    assert orders == 1


@pytest.fixture
def two_schedulers(
    db_url: str, tmp_path: Path
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[str]]]:
    processes, bases = start_servers(
        db_url, tmp_path, "s", SCHEDULER_INTERVAL="0.2", LEADER_INTERVAL="0.3"
    )
    try:
        yield processes, bases
    finally:
        stop_servers(processes)


async def test_killing_the_leader_hands_over_and_a_due_reminder_fires_once(
    two_schedulers: tuple[list[subprocess.Popen[bytes]], list[str]], db_url: str, backend: str
) -> None:
    from sqlalchemy import text, update

    (leader, _), (first, _second) = two_schedulers
    ids = iter(range(8_000_000, 8_000_100))
    for line in ("水管爆了", "1栋", "13899990000", "确认"):
        await asyncio.to_thread(post, first, "o_kill", line, next(ids))
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:  # the unit's reminder comes due in 2 s
            await connection.execute(
                update(models.Reminder)
                .where(models.Reminder.kind == "accept_remind")
                .values(
                    due_at=func.now() + text("interval '2 seconds'")
                    if backend == "postgresql"
                    else text("datetime('now', '+2 seconds')")
                )
            )
        leader.kill()  # SIGKILL: no goodbye, the lock goes with its connection
        leader.wait(10)
        chased = 0
        for _ in range(100):
            await asyncio.sleep(0.1)
            async with engine.connect() as connection:
                chased = (
                    await connection.scalar(
                        select(func.count())
                        .select_from(models.OutboxMessage)
                        .where(models.OutboxMessage.key.like("remind:%"))
                    )
                    or 0
                )
            if chased:
                break
        await asyncio.sleep(1.0)  # time for a second (wrong) firing to show up
        async with engine.connect() as connection:
            chased = (
                await connection.scalar(
                    select(func.count())
                    .select_from(models.OutboxMessage)
                    .where(models.OutboxMessage.key.like("remind:%"))
                )
                or 0
            )
            fired = await connection.scalar(
                select(func.count())
                .select_from(models.Reminder)
                .where(models.Reminder.kind == "accept_remind", models.Reminder.status == "done")
            )
    finally:
        await engine.dispose()
    # Due after the leader died: on PostgreSQL only a process that took the leadership
    # over polls, so firing at all proves the hand-over; once proves nothing doubled.
    assert fired == 1
    assert chased == 1  # the unit has one channel: one chase


def test_serve_with_workers_shares_the_port(db_url: str, tmp_path: Path) -> None:
    import json

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    env.update(
        DATABASE_URL=db_url,
        WECHAT_TOKEN=TOKEN,
        LOG_LEVEL="ERROR",
        CATALOG_PATH=str(write_catalog(tmp_path)),
    )
    parent = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        pids: set[int] = set()
        for _ in range(200):
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
                pids.add(json.loads(reply.read())["pid"])
            if len(pids) == 2:
                break
            time.sleep(0.02)
        assert len(pids) == 2, "the second worker never answered"
    finally:
        parent.terminate()
        parent.wait(20)
    for pid in pids:  # the workers stopped with the parent
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"worker {pid} is still running")
