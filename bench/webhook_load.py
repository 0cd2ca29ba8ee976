#!/usr/bin/env python3
"""Webhook throughput: the real server against a bare aiohttp server, in one run.

    .venv/bin/python bench/webhook_load.py [--duration 10] [--connections 50]
        [--modes plaintext,safe] [--skip-bare]

Load comes from ``wrk`` (``apt-get install wrk``) with ``bench/wrk/webhook.lua``; a
Python client could not keep a server busy on a small machine. For each mode:

1. a bare aiohttp server (one route, ``POST /wechat`` answering ``success``) shows
   what aiohttp itself costs on this machine;
2. the real service, ``python -m bot serve`` on a fresh SQLite database in a temp
   directory, receives the same kind of WeChat messages (a resident writing 帮助).

Every request is a correctly signed WeChat push with a current timestamp, a distinct
MsgId (the server's dedupe cache must not answer for it) and one of 5,000 residents.
In plaintext mode the Lua script builds the messages itself; in safe mode (AES)
Python encrypts a pool of distinct messages before each wrk run, sized from the
warm-up rate so that no MsgId is sent twice (a warning says so if it happens).

Each measured run follows a 2 s warm-up with its own MsgIds. Before the load, one
request is sent to the real server and the start of its reply is shown, so the reader
sees what was measured. The table gives messages answered per second, p50 and p99
latency from wrk's ``--latency`` distribution, responses with status >= 400 and
socket errors (both should be 0), and full ÷ bare throughput for the same mode.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "webhook.lua"

TOKEN = "benchtoken"
APP_ID = "wxbench0000000001"
CONTENT = "帮助"
RESIDENTS = 5000
RATE_GUESS = 6000.0
"""Messages per second assumed for sizing a safe-mode pool when nothing was measured yet."""
POOL_MARGIN = 1.5
"""Pool size = expected requests × this, so MsgIds do not repeat within a run."""
MAX_DURATION = 240
"""Each run's timestamp is taken at its start; the server accepts ±300 s."""
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
WRK_TIMEOUT = "10s"
"""Per-request timeout inside wrk (its default of 2 s would hide slow answers as errors)."""

MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
    "<FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>{timestamp}</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content>"
    "<MsgId>{msgid}</MsgId></xml>"
)
ENVELOPE = (
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
    "<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
)

# The bare server runs on the event loop ``order-menu serve`` uses (uvloop when it is
# installed, see bot.cli.common.event_loop_factory), so the ratio compares like with like.
BARE_SERVER = """
import sys
from aiohttp import web
from bot.cli.common import event_loop_factory

async def wechat(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")

app = web.Application()
app.router.add_post("/wechat", wechat)
factory = event_loop_factory()
loop = factory() if factory else None
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop)
"""

# Settings the real server reads from the environment; the benchmark sets its own.
SERVER_SETTINGS = (
    "DATABASE_URL",
    "DB_POOL_SIZE",
    "DB_POOL_TIMEOUT",
    "CATALOG_PATH",
    "HOST",
    "PORT",
    "PUBLIC_URL",
    "LOG_LEVEL",
)
SERVER_SETTING_PREFIXES = ("WECHAT_", "MATCH_")

TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


# --- WeChat messages ------------------------------------------------------------------


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and concatenated, in hex."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def new_aes_key() -> str:
    """A valid EncodingAESKey: base64 of 32 random bytes without the final '='."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


class MsgIds:
    """Distinct MsgId prefixes, one per wrk run or sample request.

    A MsgId is the 7-digit prefix, a 2-digit thread number and a 9-digit counter:
    18 digits, below 2**63 like WeChat's own.
    """

    def __init__(self) -> None:
        self.base = 1_000_000 + secrets.randbelow(8_000_000)
        self.used = 0

    def prefix(self) -> str:
        self.used += 1
        return str(self.base + self.used)

    @staticmethod
    def msgid(prefix: str, thread: int, counter: int) -> str:
        return f"{prefix}{thread:02d}{counter:09d}"


def message_xml(openid: str, timestamp: str, msgid: str) -> str:
    return MESSAGE.format(openid=openid, timestamp=timestamp, content=CONTENT, msgid=msgid)


def plain_request(timestamp: str, nonce: str) -> str:
    signature = sha1_signature(TOKEN, timestamp, nonce)
    return "/wechat?" + urlencode({"signature": signature, "timestamp": timestamp, "nonce": nonce})


def safe_request(crypto: WeChatCrypto, xml: str, timestamp: str, nonce: str) -> tuple[str, str]:
    """The path and body WeChat would send for ``xml`` in safe mode."""
    encrypted = crypto.encrypt_message(xml, nonce, timestamp)
    encrypt = _cdata(encrypted, "Encrypt")
    query = {
        "signature": sha1_signature(TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": _cdata(encrypted, "MsgSignature"),
    }
    return "/wechat?" + urlencode(query), ENVELOPE.format(encrypt=encrypt)


def _cdata(xml: str, tag: str) -> str:
    found = re.search(rf"<{tag}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{tag}>", xml, re.S)
    if not found:
        raise ValueError(f"no <{tag}> in {xml[:200]!r}")
    return found.group(1)


def write_pool(
    crypto: WeChatCrypto, file_prefix: Path, prefix: str, size: int, threads: int
) -> float:
    """Write ``size`` encrypted requests, split over one file per wrk thread.

    Returns the seconds it took (encryption is the slow part, about 20 µs each).
    """
    started = time.perf_counter()
    timestamp = str(int(time.time()))
    files = [open(f"{file_prefix}.{t}", "w", encoding="utf-8") for t in range(threads)]  # noqa: SIM115
    try:
        for index in range(size):
            thread, counter = index % threads, index // threads + 1
            xml = message_xml(
                f"o_bench_{index % RESIDENTS}", timestamp, MsgIds.msgid(prefix, thread, counter)
            )
            path, body = safe_request(crypto, xml, timestamp, f"{prefix}n{index}")
            files[thread].write(f"{path}\t{body}\n")
    finally:
        for file in files:
            file.close()
    return time.perf_counter() - started


# --- servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """Status and body of one request; HTTP errors are answers too."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "text/xml"} if body else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class Server:
    """A server in a subprocess with its output in a log file; stopped with SIGTERM."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int
    ) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches only us; we stop the server
            )

    def wait_ready(self, probe: Callable[[], bool], timeout: float = READY_TIMEOUT) -> float:
        """Poll ``probe`` until it is true; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with status {self.process.returncode} "
                    f"before it was ready:\n{self.log_tail()}"
                )
            try:
                if probe():
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} server not ready after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> str:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; says how it ended."""
        if self.process.poll() is not None:
            return f"had already exited with status {self.process.returncode}"
        self.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            status = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return f"did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM: killed"
        return f"stopped in {time.monotonic() - started:.1f} s (exit status {status})"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


def start_bare(workdir: Path) -> Server:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")]))
    server = Server("bare", [sys.executable, "-c", BARE_SERVER, str(port)], env, workdir, port)
    server.wait_ready(lambda: http("POST", f"{server.base_url}/wechat", b"<xml/>")[0] == 200)
    return server


def start_full(
    workdir: Path, aes_key: str | None, database_url: str | None = None, workers: int = 1
) -> tuple[Server, float]:
    """The real service, on a fresh SQLite database in ``workdir`` unless a database
    URL is given; with ``workers`` processes sharing the port."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SERVER_SETTINGS and not key.startswith(SERVER_SETTING_PREFIXES)
    }
    env |= {
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "WECHAT_TOKEN": TOKEN,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")])),
    }
    if aes_key:
        env |= {"WECHAT_APP_ID": APP_ID, "WECHAT_ENCODING_AES_KEY": aes_key}
    # The working directory is the temp dir, so no .env file of the checkout applies.
    command = [sys.executable, "-m", "bot", "serve", "--workers", str(workers)]
    server = Server("full", command, env, workdir, port)
    took = server.wait_ready(lambda: http("GET", f"{server.base_url}/healthz")[0] == 200)
    return server, took


def sample_reply(server: Server, crypto: WeChatCrypto | None, prefix: str) -> str:
    """Send one message as WeChat would and describe the reply (first 80 characters)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    xml = message_xml("o_bench_sample", timestamp, MsgIds.msgid(prefix, 0, 1))
    if crypto is None:
        path, body = plain_request(timestamp, nonce), xml
    else:
        path, body = safe_request(crypto, xml, timestamp, nonce)
    status, raw = http("POST", server.base_url + path, body.encode())
    text = raw.decode("utf-8", errors="replace")
    shown = f"HTTP {status}  {_flat(text)[:80]!r}"
    if crypto is not None and "<Encrypt>" in text:
        try:
            plain = crypto.decrypt_message(
                text, _cdata(text, "MsgSignature"), _cdata(text, "TimeStamp"), _cdata(text, "Nonce")
            )
            shown += f"\n    decrypted: {_flat(plain)[:80]!r}"
        except Exception as exc:  # the benchmark still runs; the reader sees why
            shown += f"\n    (cannot decrypt the reply: {exc})"
    return shown


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- wrk ------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    sent: int
    pool: int
    wrapped: int


def parse_wrk(output: str) -> WrkResult:
    def number(pattern: str, default: str = "0") -> str:
        found = re.search(pattern, output, re.M)
        return found.group(1) if found else default

    def percentile(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
        return float(found.group(1)) * TIME_UNITS_MS[found.group(2)] if found else math.nan

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        rps=float(number(r"^Requests/sec:\s+([\d.]+)", "nan")),
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        requests=int(number(r"^\s+(\d+) requests in ")),
        non2xx=int(number(r"Non-2xx or 3xx responses:\s+(\d+)")),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        sent=int(number(r"webhook\.lua: sent=(\d+)")),
        pool=int(number(r"webhook\.lua: .*pool=(\d+)")),
        wrapped=int(number(r"webhook\.lua: .*wrapped=(\d+)")),
    )


@dataclass
class Load:
    wrk: str
    threads: int
    connections: int
    workdir: Path
    msgids: MsgIds

    def command(self, seconds: int, url: str, args: list[str]) -> list[str]:
        return [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            WRK_TIMEOUT,
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            *args,
        ]

    def run(
        self, server: Server, crypto: WeChatCrypto | None, seconds: int, rate_hint: float
    ) -> WrkResult:
        """One wrk run of ``seconds`` with fresh MsgIds and a current timestamp."""
        prefix = self.msgids.prefix()
        url = server.base_url + "/wechat"
        pool_prefix = self.workdir / f"pool-{prefix}"
        if crypto is None:
            timestamp = str(int(time.time()))
            template = message_xml("%s", timestamp, "%s").replace("%s", "\0")
            template = template.replace("%", "%%").replace("\0", "%s")
            args = ["plain", plain_request(timestamp, secrets.token_hex(8)), template, prefix]
            args.append(str(RESIDENTS))
        else:
            size = math.ceil(seconds * max(rate_hint, 100.0) * POOL_MARGIN)
            size = max(size, self.connections * 4)
            took = write_pool(crypto, pool_prefix, prefix, size, self.threads)
            print(f"    ({size:,} encrypted messages prepared in {took:.1f} s)", flush=True)
            args = ["pool", str(pool_prefix)]
        try:
            done = subprocess.run(
                self.command(seconds, url, args),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                check=False,
            )
        finally:
            for thread in range(self.threads):
                Path(f"{pool_prefix}.{thread}").unlink(missing_ok=True)
        if done.returncode != 0 or "Requests/sec:" not in done.stdout:
            raise RuntimeError(
                f"wrk failed (exit status {done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return parse_wrk(done.stdout)

    def measure(
        self,
        server: Server,
        crypto: WeChatCrypto | None,
        duration: int,
        warmup: int,
        rate_hint: float,
    ) -> WrkResult:
        if warmup > 0:
            warm = self.run(server, crypto, warmup, rate_hint)
            if warm.rps > 0:
                rate_hint = warm.rps
            print(f"    warm-up {warmup} s: {warm.rps:,.0f} msgs/s", flush=True)
        result = self.run(server, crypto, duration, rate_hint)
        print(
            f"    measured {duration} s: {result.rps:,.0f} msgs/s, "
            f"{result.requests:,} answered, {result.non2xx:,} non-2xx",
            flush=True,
        )
        return result


# --- report ---------------------------------------------------------------------------

ROW = "{:<10} {:<7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}"


def fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def print_table(rows: list[tuple[str, str, WrkResult]]) -> None:
    print(ROW.format("mode", "server", "msgs/s", "p50 ms", "p99 ms", "non-2xx", "sockerr", "ratio"))
    bare_rps: dict[str, float] = {}
    notes: list[str] = []
    for mode, server, result in rows:
        ratio = ""
        if server == "bare":
            bare_rps[mode] = result.rps
        elif bare_rps.get(mode):
            ratio = f"{result.rps / bare_rps[mode]:.2f}"
        mark = ""
        if result.wrapped:
            mark = "*"
            effect = (
                "harmless here: the bare server keeps no dedupe cache"
                if server == "bare"
                else "repeated MsgIds hit the dedupe cache and flatter the figures; "
                "use a shorter --duration"
            )
            notes.append(
                f"* {mode} {server}: the wrk threads went through their share of the "
                f"{result.pool:,} prepared messages again {result.wrapped} time(s) ({effect})"
            )
        print(
            ROW.format(
                mode,
                server,
                fmt(result.rps, ",.0f") + mark,
                fmt(result.p50_ms, ".2f"),
                fmt(result.p99_ms, ".2f"),
                f"{result.non2xx:,}",
                f"{result.socket_errors:,}",
                ratio,
            )
        )
    for note in notes:
        print(note)


# --- main -----------------------------------------------------------------------------


def find_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    return "/usr/bin/wrk" if os.access("/usr/bin/wrk", os.X_OK) else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Webhook throughput of the real server against a bare aiohttp server."
    )
    parser.add_argument("--duration", type=int, default=10, help="Seconds per measured run.")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections.")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads.")
    parser.add_argument("--warmup", type=int, default=2, help="Seconds of warm-up (0: none).")
    parser.add_argument(
        "--modes", default="plaintext,safe", help="Comma-separated: plaintext, safe."
    )
    parser.add_argument("--skip-bare", action="store_true", help="Measure the real server only.")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Also measure the service with this many processes (on --database-url).",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="Database of the multi-process run, e.g. postgresql+asyncpg://postgres@127.0.0.1/test",
    )
    args = parser.parse_args(argv)
    args.modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(args.modes) - {"plaintext", "safe"})
    if unknown or not args.modes:
        parser.error(f"--modes: expected plaintext and/or safe, got {args.modes!r}")
    if not 1 <= args.duration <= MAX_DURATION or args.warmup < 0:
        parser.error(
            f"--duration must be 1 to {MAX_DURATION} s (the server refuses timestamps older "
            "than 300 s) and --warmup at least 0"
        )
    if args.threads < 1 or args.connections < args.threads:
        parser.error("--connections must be at least --threads (and --threads at least 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    if wrk is None:
        print("wrk is not installed: run `apt-get install wrk` (Debian/Ubuntu)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp:
        workdir = Path(tmp)
        load = Load(wrk, args.threads, args.connections, workdir, MsgIds())
        shown = load.command(args.duration, "http://127.0.0.1:PORT/wechat", ["ARGS..."])
        print(f"CPUs: {os.cpu_count()}   Python {sys.version.split()[0]}")
        print(f"wrk command: {' '.join(shown)}")
        print(
            f"  (ARGS: 'plain <signed path> <xml template> <msgid prefix> {RESIDENTS}' or "
            "'pool <file of encrypted requests>'; each run preceded by a "
            f"{args.warmup} s warm-up)"
        )
        rows: list[tuple[str, str, WrkResult]] = []
        bare: Server | None = None
        status = 0
        try:
            if not args.skip_bare:
                (workdir / "bare").mkdir()
                bare = start_bare(workdir / "bare")
            for mode in args.modes:
                aes_key = new_aes_key() if mode == "safe" else None
                crypto = WeChatCrypto(TOKEN, aes_key, APP_ID) if aes_key else None
                bare_rps = RATE_GUESS
                if bare is not None:
                    print(f"{mode} bare: aiohttp, one route, same event loop as serve", flush=True)
                    result = load.measure(bare, crypto, args.duration, args.warmup, RATE_GUESS)
                    rows.append((mode, "bare", result))
                    bare_rps = result.rps
                full_dir = workdir / f"full-{mode}"
                full_dir.mkdir()
                print(f"{mode} full: {sys.executable} -m bot serve", flush=True)
                full, took = start_full(full_dir, aes_key)
                try:
                    print(f"    ready in {took:.1f} s (GET /healthz 200)")
                    reply = sample_reply(full, crypto, load.msgids.prefix())
                    print(f"    sample reply: {reply}", flush=True)
                    result = load.measure(full, crypto, args.duration, args.warmup, bare_rps)
                    rows.append((mode, "full", result))
                finally:
                    print(f"    full server {full.stop()}", flush=True)
                    if full.process.returncode not in (0, None):
                        print(full.log_tail())
                if args.workers > 1:
                    scaled_dir = workdir / f"scaled-{mode}"
                    scaled_dir.mkdir()
                    label = f"x{args.workers} " + ("pg" if args.database_url else "sqlite")
                    print(f"{mode} {label}: serve --workers {args.workers}", flush=True)
                    scaled, took = start_full(scaled_dir, aes_key, args.database_url, args.workers)
                    try:
                        print(f"    ready in {took:.1f} s (GET /healthz 200)")
                        result = load.measure(scaled, crypto, args.duration, args.warmup, bare_rps)
                        rows.append((mode, label, result))
                    finally:
                        print(f"    {label} {scaled.stop()}", flush=True)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            status = 130
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
        finally:
            if bare is not None:
                bare.stop()

    if rows:
        print()
        print_table(rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
