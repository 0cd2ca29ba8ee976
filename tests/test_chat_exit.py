"""``order-menu chat`` ends with one ``error:`` line and a non-zero status when the
server cannot be reached, like every other command, so a script notices."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.chat import ServerUnreachable, chat
from tests.servers import free_port


def test_chat_with_no_server_exits_1_with_one_error_line() -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    env["WECHAT_TOKEN"] = "chat-token"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--url", f"http://127.0.0.1:{port}"],
        input="帮助\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach http://127.0.0.1:{port}: "), line
    assert "bot>" not in result.stdout


async def test_a_piped_chat_stops_when_the_server_goes_away() -> None:
    received: list[str] = []

    async def wechat(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/wechat", wechat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")

    async def lines() -> AsyncIterator[str]:
        yield "帮助"
        await server.close()  # the server stops between two messages
        yield "我的订单"
        yield "never sent"

    out = io.StringIO()
    with pytest.raises(ServerUnreachable, match=f"cannot reach {base}/wechat: "):
        await chat(base, "t", openid="o1", input_lines=lines(), out=out)
    assert len(received) == 1
    assert "error:" not in out.getvalue()  # said once, by the command, on stderr
    await asyncio.sleep(0)
