"""PostgreSQL restarted under load: the service recovers by itself and loses no message
it acknowledged to WeChat.

WeChat takes a 200 answer within 5 s (a reply, or ``success``) as delivery and never
sends that message again; anything else (a 503, a dropped connection, no answer in
time) it retries. So the promise under test is: every message answered 200 in time
has its effects committed, and WeChat's retries of all the others bring their effects
about exactly once - with the same ``order-menu serve`` process, never restarted.

The effect is one a resident can see: a message the catalog cannot serve is kept as an
unmet need (需求清单), one row per message. Each message comes from a resident of its
own, because after a need is kept the conversation waits for a category number, and a
second need from the same resident would not be kept.

PostgreSQL only (SQLite has no server to restart), and only where the test can stop
and start the server itself: a Debian cluster on this machine (``pg_ctlcluster``).
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from handlers.texts import NEED_RECORDED
from storage import models
from storage.engine import create_engine
from tests.servers import post, start_servers, stop_servers

NEED = "小区里能不能办个老年人学跳舞的班"
"""Matches nothing in tests/ordering_catalog.py: kept as an unmet need."""

FIRST_ID = 9_300_000
SENDERS = 6
"""Residents writing at the same time (each message from a resident of its own)."""
PAUSE = 0.05
"""Between two messages of one sender: load, without thousands of failures to retry."""
WARM_UP = 1.0
"""Normal traffic before the restart, so the pool holds connections that will die."""
OUTAGE = 1.0
"""How long the server stays down between stop and start: long enough that messages
arrive while it is down, not only while it shuts down or starts."""
CUTTING = 2.0
"""How long the service's connections are cut, every 0.1 s, at least."""
CUTTING_LIMIT = 15.0
"""How long the cuts may go on until one of them reaches a message."""
RECOVERY_LIMIT = 10.0
"""After PostgreSQL accepts connections again, the service must be back within this."""
AFTER_RECOVERY = 1.0
WECHAT_PATIENCE = 5.0
"""WeChat drops the connection after 5 s: a later answer acknowledges nothing."""
RETRY_AFTER = 5.0
"""WeChat retries a message about 5 s after sending it, three times at most."""
RETRIES = 3


# --- the database server ---------------------------------------------------------------

Cluster = tuple[str, str]
"""(version, name) of a Debian PostgreSQL cluster."""


def _cluster_status(port: int) -> tuple[Cluster, str] | None:
    """The local cluster on ``port`` and its status (``online``, ``down``...), if any."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return None
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port, status, *_ = line.split()
        if int(cluster_port) == port:
            return (version, name), status
    return None


def _pg_ctl(cluster: Cluster, action: str) -> None:
    """``stop`` (fast: sessions are cut, open transactions roll back) or ``start``
    (returns once the server accepts connections)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
        capture_output=True,
        check=True,
        timeout=60,
    )


async def _other_clients(db_url: str) -> int:
    """Sessions on other databases of the server: other test runs, benchmarks, people.
    (This run's own database has none between tests.)"""
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid() AND datname IS DISTINCT FROM current_database()"
                )
            )
            return int(found or 0)
    finally:
        await engine.dispose()


@pytest.fixture
def cluster(db_url: str, backend: str) -> Iterator[Cluster]:
    """The cluster serving ``db_url``, which the test may stop; it is running again
    afterwards whatever happened, since later tests share the server."""
    if backend != "postgresql":
        pytest.skip("restarting the database server needs PostgreSQL")
    url = make_url(db_url)
    if url.host not in (None, "", "localhost", "127.0.0.1", "::1"):
        pytest.skip(f"PostgreSQL at {url.host} is not on this machine")
    found = _cluster_status(url.port or 5432)
    if found is None or not found[1].startswith("online"):
        pytest.skip(f"no running pg_ctlcluster cluster on port {url.port or 5432}")
    others = asyncio.run(_other_clients(db_url))
    if others:
        pytest.skip(f"{others} other clients use this PostgreSQL server: a restart would cut them")
    try:
        yield found[0]
    finally:
        after = _cluster_status(url.port or 5432)
        if after is not None and not after[1].startswith("online"):
            _pg_ctl(found[0], "start")


@pytest.fixture
def server(
    db_url: str, tmp_path: Path, backend: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    if backend != "postgresql":
        pytest.skip("the service's database connections are PostgreSQL's")
    processes, bases = start_servers(db_url, tmp_path, "r", count=1)
    try:
        yield processes[0], bases[0]
    finally:
        stop_servers(processes)


# --- WeChat's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One delivery of one message, as WeChat saw it."""

    msg_id: int
    status: int | None
    """The HTTP status; None when no answer came (refused, reset, timed out)."""
    body: str
    began: float
    took: float

    @property
    def acknowledged(self) -> bool:
        """WeChat would not send this message again."""
        return self.status == 200 and self.took <= WECHAT_PATIENCE

    @property
    def key(self) -> str:
        """The webhook's dedupe key for a message (``Incoming.key``)."""
        return f"msg:{self.msg_id}"

    def describe(self, origin: float) -> str:
        return (
            f"MsgId {self.msg_id} at {self.began - origin:+.2f} s: "
            f"{self.status} in {self.took:.2f} s, {self.body[:120]!r}"
        )


def resident(msg_id: int) -> str:
    return f"o_restart_{msg_id}"


def deliver(base: str, msg_id: int) -> Attempt:
    """Send one message as WeChat does, and note what came back instead of raising."""
    began = time.monotonic()
    try:
        status, body = 200, post(base, resident(msg_id), NEED, msg_id)
    except urllib.error.HTTPError as exc:  # before OSError: it is one
        status, body = exc.code, exc.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        status, body = None, repr(exc)
    return Attempt(msg_id, status, body, began, time.monotonic() - began)


def ready(base: str) -> bool:
    """``/readyz`` answers 200: the database answers and the schema is current."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as reply:
            return int(reply.status) == 200
    except (OSError, http.client.HTTPException):  # 503 included (HTTPError)
        return False


def answered_right(attempt: Attempt) -> bool:
    """The reply a kept need gets (or ``success``, when it was sent later)."""
    return NEED_RECORDED in attempt.body or attempt.body == "success"


# --- the tests -------------------------------------------------------------------------


Disruption = Callable[[list["Attempt"]], Awaitable[None]]
"""Disturbs the database while messages come; it may look at the attempts so far."""


@pytest.mark.serial  # stops the PostgreSQL server: nothing else may run meanwhile
async def test_a_database_restart_under_load_loses_no_acknowledged_message(
    server: tuple[subprocess.Popen[bytes], str], cluster: Cluster, db_url: str
) -> None:
    async def restart(_attempts: list[Attempt]) -> None:
        await asyncio.to_thread(_pg_ctl, cluster, "stop")
        await asyncio.sleep(OUTAGE)
        await asyncio.to_thread(_pg_ctl, cluster, "start")

    await _load_through(server, db_url, restart)


async def test_connections_cut_under_load_lose_no_acknowledged_message(
    server: tuple[subprocess.Popen[bytes], str], db_url: str
) -> None:
    """Only the service's connections die (killed sessions, a pooler or proxy dropping
    them, a fail-over) while the server stays up: a handler whose connection is cut
    must not answer the resident with an apology that WeChat takes as delivery."""

    async def cut_connections(attempts: list[Attempt]) -> None:
        # At least CUTTING seconds, and on until a cut has reached a message (only a
        # connection cut inside a handler's transaction does; on a loaded machine the
        # first seconds of cuts may all land between transactions).
        engine = create_engine(db_url, pool_size=1)
        began = time.monotonic()
        try:
            while time.monotonic() - began < CUTTING or (
                all(a.acknowledged for a in attempts) and time.monotonic() - began < CUTTING_LIMIT
            ):
                async with engine.connect() as connection:
                    await connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                    await connection.commit()
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()

    await _load_through(server, db_url, cut_connections)


async def _load_through(
    server: tuple[subprocess.Popen[bytes], str], db_url: str, disrupt: Disruption
) -> None:
    """Messages keep coming while ``disrupt`` runs; then the service must be back by
    itself, every acknowledged message must have its effect, and WeChat's retries of
    the others must bring theirs about exactly once."""
    process, base = server
    ids = itertools.count(FIRST_ID)
    attempts: list[Attempt] = []  # list.append is atomic: the senders share it
    stop = threading.Event()

    def send_until_stopped() -> None:
        while not stop.is_set():
            attempts.append(deliver(base, next(ids)))
            stop.wait(PAUSE)

    # Threads of their own: the default executor may have no more than SENDERS workers
    # (a 2-CPU machine), and the disruption must not queue behind the senders.
    senders = [threading.Thread(target=send_until_stopped) for _ in range(SENDERS)]
    origin = time.monotonic()
    for sender in senders:
        sender.start()
    try:
        await asyncio.sleep(WARM_UP)
        down_at = time.monotonic()
        await disrupt(attempts)
        back_at = time.monotonic()

        # Recovered: a fresh message is handled as usual and /readyz says ready, from
        # the same process - nobody restarts it.
        recovered_at: float | None = None
        while time.monotonic() - back_at < RECOVERY_LIMIT:
            probe = await asyncio.to_thread(deliver, base, next(ids))
            attempts.append(probe)
            if (
                probe.acknowledged
                and NEED_RECORDED in probe.body
                and await asyncio.to_thread(ready, base)
            ):
                recovered_at = time.monotonic()
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(AFTER_RECOVERY)
    finally:
        stop.set()
        for sender in senders:
            await asyncio.to_thread(sender.join)
    assert process.poll() is None, f"the bot process exited ({process.returncode})"
    assert recovered_at is not None, (
        f"not recovered {RECOVERY_LIMIT} s after the disruption ended; last attempts:\n"
        + "\n".join(a.describe(origin) for a in attempts[-5:])
    )
    # Every message acknowledged so far has its need kept.
    messages = {a.msg_id: a for a in attempts}  # each sent once so far
    acknowledged = [a for a in messages.values() if a.acknowledged]
    kept = await _needs(db_url)
    lost = [a for a in acknowledged if a.key not in kept]
    assert not lost, (
        f"{len(lost)} of {len(acknowledged)} acknowledged messages lost their need "
        f"(disrupted from {down_at - origin:+.2f} s to {back_at - origin:+.2f} s):\n"
        + "\n".join(a.describe(origin) for a in lost[:10])
    )
    wrong = [a for a in acknowledged if not answered_right(a)]
    assert not wrong, "acknowledged with another reply:\n" + "\n".join(
        a.describe(origin) for a in wrong[:10]
    )

    unanswered = [a for a in attempts if not a.acknowledged]
    assert unanswered, "no message failed: the disruption did not reach the traffic"
    before = [a for a in attempts if a.began + a.took < down_at]
    assert before and all(a.acknowledged for a in before), "failures before the disruption"

    # WeChat retries the others, ~5 s after sending them, three times at most. A retry
    # is answered as the first attempt would have been: the need's reply, not the next
    # step of a conversation the first attempt moved on (its new state is kept only
    # with its reply, in one transaction).
    pending = sorted({a.msg_id for a in unanswered})
    latest = max(a.began for a in unanswered)
    await asyncio.sleep(max(0.0, latest + RETRY_AFTER - time.monotonic()))
    retried: list[Attempt] = []
    for _ in range(RETRIES):
        if not pending:
            break
        batch = await _deliver_all(base, pending)
        retried += batch
        pending = [a.msg_id for a in batch if not a.acknowledged]
    assert not pending, f"{len(pending)} messages never acknowledged on retry:\n" + "\n".join(
        a.describe(origin) for a in retried if a.msg_id in pending[:10]
    )
    wrong = [a for a in retried if a.acknowledged and not answered_right(a)]
    assert not wrong, "a retry answered with another reply:\n" + "\n".join(
        a.describe(origin) for a in wrong[:10]
    )

    # A retry of a message already acknowledged (its reply lost on the way) is answered
    # from the ledger, without a second run.
    again = await _deliver_all(
        base, [a.msg_id for a in acknowledged[:: max(1, len(acknowledged) // 20)]]
    )
    assert all(a.acknowledged and answered_right(a) for a in again), [
        a.describe(origin) for a in again if not (a.acknowledged and answered_right(a))
    ]

    # Exactly once: one need per message sent, no more, each for its resident; and the
    # ledger knows every message as handled (a further retry would not run it again).
    kept = await _needs(db_url)
    sent = {f"msg:{msg_id}": resident(msg_id) for msg_id in messages}
    assert sorted(kept) == sorted(sent), (
        f"{len(kept)} needs for {len(sent)} messages; "
        f"missing {sorted(set(sent) - set(kept))[:10]}, extra {sorted(set(kept) - set(sent))[:10]}"
    )
    assert all(kept[key] == [(openid, NEED)] for key, openid in sent.items())
    handled = await _handled(db_url)
    assert set(sent) <= handled, f"not marked handled: {sorted(set(sent) - handled)[:10]}"
    assert process.poll() is None


async def _deliver_all(base: str, msg_ids: list[int]) -> list[Attempt]:
    """Deliver these messages, several at a time, as WeChat's retries would come."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(SENDERS) as pool:
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(pool, deliver, base, msg_id) for msg_id in msg_ids)
            )
        )


async def _needs(db_url: str) -> dict[str, list[tuple[str | None, str]]]:
    """Kept needs by message key: (openid, text) of each row, to see duplicates too."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(models.UnmetNeed.message_key, models.UnmetNeed.openid, models.UnmetNeed.text)
            )
            found: dict[str, list[tuple[str | None, str]]] = {}
            for key, openid, said in rows:
                found.setdefault(str(key), []).append((openid, said))
            return found
    finally:
        await engine.dispose()


async def _handled(db_url: str) -> set[str]:
    """Keys of the messages the ledger has as finished (or answered later)."""
    table = models.ProcessedMessage
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(table.key).where(table.done.is_(True) | table.deferred.is_(True))
            )
            return {str(key) for (key,) in rows}
    finally:
        await engine.dispose()
