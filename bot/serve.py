"""Run the service until SIGINT/SIGTERM, and tell the operator where everything is."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import unicodedata
from collections.abc import Callable
from typing import TextIO

from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.config import Settings


class CannotListen(Exception):
    """The address to serve on is taken or not ours; the message names it."""


def display_width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def banner(app: web.Application, base_url: str) -> str:
    settings = app[keys.SETTINGS]
    tenants = app[keys.TENANTS]
    width = max(display_width(link.banner) for link in app[keys.LINKS]) + 2
    lines = [
        *(
            f"order-menu is serving {t.name} ({len(t.catalog.current.units)} units, "
            f"{len(t.catalog.current.items)} items, catalog {t.catalog.current.version})"
            for t in tenants
        ),
        "",
        "Open in a browser:",
        *(
            f"  {link.banner}{' ' * (width - display_width(link.banner))}{base_url}{link.path}"
            for link in app[keys.LINKS]
        ),
        "",
        f"Database:  {settings.database_display()}",
    ]
    for tenant in tenants:
        path = "/wechat" if not tenants.several else f"/wechat/{tenant.id}"
        if tenants.several:
            lines.append(f"{tenant.name} ({tenant.id}):")
        lines += [
            f"Catalog:   {tenant.catalog.current.source}",
            f"WeChat server URL (公众号 服务器地址): {base_url}{path}"
            + (" (safe mode)" if tenant.spec.safe_mode else ""),
        ]
        if tenant.credentials.token_generated:
            lines.append(
                "WeChat token (development, generated and kept in the database): "
                + tenant.credentials.token
            )
    if any(t.credentials.token_generated for t in tenants):
        lines.append(
            "  Set WECHAT_TOKEN, WECHAT_APP_ID and WECHAT_APP_SECRET "
            "(with several communities, <ID>_WECHAT_…) to connect a real account."
        )
    lines += ["", "Press Ctrl+C to stop."]
    return "\n".join(lines)


async def serve(
    settings: Settings,
    host: str,
    port: int,
    out: TextIO = sys.stdout,
    *,
    reuse_port: bool = False,
    announce: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM. ``announce``: print the banner (one worker of
    several does); ``on_ready`` is called once the port accepts connections."""
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs the start-up contexts: migrations, catalog, token
    # What start-up built (jieba's dictionary, the matcher, the catalog) lives as long
    # as the process: keep it out of the garbage collector's full passes, which would
    # otherwise walk all of it and pause every request in flight for tens of ms.
    gc.collect()
    gc.freeze()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:  # not the database's fault, which is what run() would say
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        bound_port = _bound_port(site) or port
        if announce:
            print(banner(app, f"http://{shown_host}:{bound_port}"), file=out, flush=True)
        if on_ready is not None:
            on_ready()
        await _wait_for_stop_signal()
    finally:
        await runner.cleanup()


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp keeps the asyncio server here; needed for --port 0
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else None


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
