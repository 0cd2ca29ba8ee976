"""``bot.chat``: a terminal chat with a running server through its real webhook."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.chat import NO_LATE_REPLIES, ServerUnreachable, chat, format_reply, normalise_base_url
from bot.wechat import HELP
from tests.webhook_app import AES_KEY, APP_ID, TOKEN, Client, start


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


def _base_url(client: TestClient[Any, Any]) -> str:
    return str(client.make_url(""))


async def _chat(client: TestClient[Any, Any], *lines: str, **options: Any) -> str:
    out = io.StringIO()
    options.setdefault("openid", "o_chat_1")
    await chat(_base_url(client), TOKEN, input_lines=_lines(*lines), out=out, **options)
    return out.getvalue()


def _bot_replies(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("bot> ")]


# --- against the real service ---------------------------------------------------------


async def test_follow_help_and_voice(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    output = await _chat(wechat.client, "/follow", "帮助", "/voice 帮助", "/quit", "never sent")
    replies = _bot_replies(output)
    assert len(replies) == 3, output
    assert "欢迎关注" in replies[0]
    assert "服务小助手" in replies[1] and "服务小助手" in replies[2]
    assert "Traceback" not in output and "error:" not in output
    # A multi-line reply is indented under its first line.
    lines = output.splitlines()
    first = lines.index(replies[1])
    assert lines[first + 1].startswith(" " * len("bot> "))


async def test_every_command_reaches_the_bot(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    output = await _chat(
        wechat.client,
        "/help",
        f"/click {HELP}",
        "/image",
        "/location 25.27 110.29 解东路 12号",
        "/voice",
        "/unfollow",
        "/location north",
        "/bogus",
        "",
    )
    assert "/location LAT LON LABEL" in output  # /help
    replies = _bot_replies(output)
    assert len(replies) == 4, output  # /unfollow is answered "success": nothing shown
    assert "服务小助手" in replies[0]
    assert "图片" in replies[1]
    assert "位置" in replies[2]
    assert "没听清" in replies[3]
    assert "usage: /location" in output
    assert "unknown command /bogus" in output


async def test_safe_mode(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url, safe=True)
    output = await _chat(wechat.client, "帮助", aes_key=AES_KEY, app_id=APP_ID)
    assert "服务小助手" in "".join(_bot_replies(output)), output

    # Plaintext to a server in safe mode is refused: shown as an error line.
    plain = await _chat(wechat.client, "帮助")
    assert "error: HTTP 400" in plain and not _bot_replies(plain)


async def test_wrong_token_is_an_error_line(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    out = io.StringIO()
    await chat(
        _base_url(wechat.client), "not-the-token", openid="o1", input_lines=_lines("帮助"), out=out
    )
    assert "error: HTTP 403 forbidden" in out.getvalue()


async def test_the_server_url_printed_by_serve_is_accepted(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    out = io.StringIO()
    url = _base_url(wechat.client).rstrip("/") + "/wechat"
    await chat(url, TOKEN, openid="o1", input_lines=_lines("帮助"), out=out)
    assert "服务小助手" in out.getvalue()


async def test_no_server_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = io.StringIO()
    with pytest.raises(ServerUnreachable) as raised:  # the CLI: one error line, exit 1
        await chat(
            f"http://127.0.0.1:{port}",
            TOKEN,
            openid="o1",
            input_lines=_lines("帮助", "/follow"),
            out=out,
            poll_interval=0.01,
        )
    assert str(raised.value).startswith(f"cannot reach http://127.0.0.1:{port}: ")
    assert "bot>" not in out.getvalue() and "error:" not in out.getvalue()


# --- late replies, against a stub server ----------------------------------------------


class StubServer:
    """Answers every message "success" and serves canned late replies."""

    def __init__(self, outbox: bool = True) -> None:
        self.messages: list[dict[str, Any]] = [
            {"seq": 1, "openid": "o_late", "text": "old reply"},
            {"seq": 2, "openid": "o_other", "text": "someone else's"},
        ]
        self.received: list[str] = []
        self.afters: list[int] = []
        self.outbox = outbox
        self.app = web.Application()
        self.app.router.add_post("/wechat", self.wechat)
        self.app.router.add_get("/dev/outbox", self.dev_outbox)

    async def wechat(self, request: web.Request) -> web.Response:
        self.received.append(await request.text())
        return web.Response(text="success")

    async def dev_outbox(self, request: web.Request) -> web.Response:
        if not self.outbox:
            raise web.HTTPNotFound()
        after = int(request.query.get("after", "0"))
        self.afters.append(after)
        openid = request.query["openid"]
        found = [m for m in self.messages if m["openid"] == openid and m["seq"] > after]
        return web.json_response({"messages": found})

    def deliver_later(self, openid: str, text: str) -> None:
        seq = max(m["seq"] for m in self.messages) + 1
        self.messages.append({"seq": seq, "openid": openid, "text": text})


async def _until(check: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``check()`` holds."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_late_replies_are_polled_and_printed(aiohttp_client: Client) -> None:
    stub = StubServer()
    client = await aiohttp_client(stub.app)
    out = io.StringIO()

    async def typed() -> AsyncIterator[str]:
        yield "楼上漏水"
        await _until(lambda: len(stub.received) == 1)
        stub.deliver_later("o_late", "已为您派单。\n师傅明天上午上门")
        stub.deliver_later("o_other", "not for us")
        stub.deliver_later("o_late", "第二条")
        await _until(lambda: "第二条" in out.getvalue())

    await chat(
        _base_url(client), TOKEN, openid="o_late", input_lines=typed(), out=out, poll_interval=0.02
    )
    output = out.getvalue()
    assert "old reply" not in output and "not for us" not in output
    assert format_reply("bot (later)> ", "已为您派单。\n师傅明天上午上门") in output
    assert output.index("师傅明天") < output.index("第二条")
    assert output.count("第二条") == 1
    assert "bot> " not in output  # "success" prints nothing
    # The first look (after=0) sets the start; later looks ask after the highest seq seen.
    assert stub.afters[0] == 0 and set(stub.afters[1:]) <= {1, 5} and 1 in stub.afters
    assert "<MsgType><![CDATA[text]]></MsgType>" in stub.received[0]
    assert "<FromUserName><![CDATA[o_late]]></FromUserName>" in stub.received[0]

    # The poll task has ended with the chat: the outbox is not asked again.
    asked = len(stub.afters)
    await asyncio.sleep(0.1)
    assert len(stub.afters) == asked


async def test_no_outbox_is_said_once(aiohttp_client: Client) -> None:
    stub = StubServer(outbox=False)
    client = await aiohttp_client(stub.app)
    out = io.StringIO()

    async def typed() -> AsyncIterator[str]:
        yield "hello"
        await asyncio.sleep(0.1)

    await chat(
        _base_url(client), TOKEN, openid="o_late", input_lines=typed(), out=out, poll_interval=0.01
    )
    assert out.getvalue().count(NO_LATE_REPLIES) == 1
    assert len(stub.received) == 1


def test_base_url_forms() -> None:
    for given in ("127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/wechat"):
        assert normalise_base_url(given) == "http://127.0.0.1:8080"
    assert format_reply("bot> ", "a\nb") == "bot> a\n     b"
