"""``order-menu serve`` as a real process, for the tests that need one: scale-out,
faults (SIGKILL, database restarts) and the webhook fuzz.

One way to start it: an environment of its own (no ``WECHAT_*`` or ``DATABASE_*`` of
the caller's leaking in), a free port, its own working directory; and one way to
talk to it as WeChat does (``post``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ordering_catalog import write_catalog
from tests.wechat_server import sign

TOKEN = "scale-out-token"

Process = subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn_serve(
    db_url: str,
    workdir: Path,
    *options: str,
    token: str = TOKEN,
    log: Path | None = None,
    **settings: str,
) -> tuple[Process, str]:
    """A ``serve`` process (not yet waited for) and its base URL; ``settings`` are
    environment variables (``CATALOG_PATH="…"``), ``options`` go on its command line.
    ``log``: a file for its stderr (the log), else it is thrown away."""
    port = free_port()
    with log.open("ab") if log is not None else open(os.devnull, "wb") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), *options],
            cwd=workdir,
            env=serve_env(db_url, WECHAT_TOKEN=token, **settings),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return process, f"http://127.0.0.1:{port}"


SERVE = [sys.executable, "-m", "bot", "serve"]


def serve_env(db_url: str, **settings: str) -> dict[str, str]:
    """The environment of a ``serve`` process: none of the caller's ``WECHAT_*`` or
    ``DATABASE_*``; ``settings`` on top (LOG_LEVEL is ERROR unless given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    env.update(DATABASE_URL=db_url, LOG_LEVEL="ERROR")
    env.update(settings)
    return env


def run_serve(
    db_url: str, workdir: Path, *options: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``serve`` run to its end (for starts that must fail), its output captured."""
    return subprocess.run(
        [*SERVE, *options],
        cwd=workdir,
        env=serve_env(db_url, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_healthy(base: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not start")


def start_servers(
    db_url: str, tmp_path: Path, name: str, count: int = 2, **settings: str
) -> tuple[list[Process], list[str]]:
    """``count`` ``serve`` processes on one database and the ordering test catalog,
    started one after the other (the first one migrates), each in a directory of its
    own."""
    settings.setdefault("CATALOG_PATH", str(write_catalog(tmp_path)))
    processes, bases = [], []
    for n in range(count):
        workdir = tmp_path / f"{name}{n}"
        workdir.mkdir()
        process, base = spawn_serve(db_url, workdir, **settings)
        processes.append(process)
        bases.append(base)
        wait_healthy(base)
    return processes, bases


@contextmanager
def serving(db_url: str, workdir: Path, *, token: str = TOKEN) -> Iterator[str]:
    """One ``serve`` process on the ordering test catalog, healthy; its base URL.
    Stopped on the way out."""
    process, base = spawn_serve(
        db_url, workdir, token=token, CATALOG_PATH=str(write_catalog(workdir))
    )
    try:
        wait_healthy(base)
        yield base
    finally:
        stop_servers([process])


def stop_servers(processes: list[Process]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(15)


def post(base: str, openid: str, content: str, msg_id: int) -> str:
    """A resident's text message, signed with ``TOKEN``; the reply's body."""
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
