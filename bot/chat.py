"""Chat with a running order-menu server from a terminal, through its real webhook.

Each line typed goes to ``POST /wechat`` exactly as WeChat's servers would send it: a
signed query, an XML message, and in safe mode the AES envelope and its
``msg_signature``. The passive reply is decoded and printed. Replies that missed
WeChat's 5-second deadline are sent later through the customer-service API; a server
without WeChat credentials keeps them and serves them on ``GET /dev/outbox``, which
a background task polls while the chat runs.

Slash commands send what a resident's phone would send besides text::

    /follow, /unfollow       subscribe / unsubscribe event
    /click KEY               a menu click (CLICK event with EventKey KEY)
    /voice TEXT              a voice message WeChat recognised as TEXT
    /image                   a photo
    /location LAT LON LABEL  a shared location
    /help, /quit             (end of input quits too)
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from xml.etree import ElementTree

import aiohttp
from wechatpy.crypto import WeChatCrypto

from bot.wechat.inbound import Rejected, cdata, parse_element, signature

ACCOUNT = "gh_order_menu_chat"
"""ToUserName of the messages sent: the official account being talked to."""

SEND_TIMEOUT = 15.0
"""Seconds to wait for the webhook's answer (WeChat itself gives up after 5)."""
POLL_TIMEOUT = 5.0

PROMPT = "you> "
BOT = "bot> "
BOT_LATER = "bot (later)> "

HELP_TEXT = """\
Type a message and press Enter to send it as a text message. Commands:
  /follow                  follow the account (subscribe event)
  /unfollow                unfollow it (unsubscribe event)
  /click KEY               click a menu button with key KEY (e.g. /click HELP)
  /voice TEXT              a voice message recognised as TEXT (no TEXT: not recognised)
  /image                   send a photo
  /location LAT LON LABEL  share a location, e.g. /location 25.27 110.29 解东路
  /help                    show this
  /quit                    leave (end of input, Ctrl+D, leaves too)"""

NO_LATE_REPLIES = "(late replies go to WeChat; not shown here)"


class Usage(Exception):
    """A command typed wrong; the message says how to type it."""


@dataclass(frozen=True)
class Message:
    """One message to send: its MsgType and the fields after the common four."""

    kind: str
    fields: Mapping[str, str]


def parse_input(line: str) -> Message | None:
    """What a typed line sends; None for /quit. Raises :class:`Usage` for a bad command
    and for /help (whose "usage" is the help text)."""
    if not line.startswith("/"):
        return Message("text", {"Content": line, "MsgId": _msg_id()})
    command, _, rest = line.partition(" ")
    rest = rest.strip()
    match command.lower():
        case "/quit" | "/exit":
            return None
        case "/help" | "/?":
            raise Usage(HELP_TEXT)
        case "/follow" | "/subscribe":
            return Message("event", {"Event": "subscribe", "EventKey": ""})
        case "/unfollow" | "/unsubscribe":
            return Message("event", {"Event": "unsubscribe", "EventKey": ""})
        case "/click":
            if not rest:
                raise Usage("usage: /click KEY   (e.g. /click HELP)")
            return Message("event", {"Event": "CLICK", "EventKey": rest})
        case "/voice":
            return Message(
                "voice",
                {"MediaId": _media_id(), "Format": "amr", "Recognition": rest, "MsgId": _msg_id()},
            )
        case "/image":
            return Message(
                "image",
                {
                    "PicUrl": "http://example.invalid/photo.jpg",
                    "MediaId": _media_id(),
                    "MsgId": _msg_id(),
                },
            )
        case "/location":
            parts = rest.split(maxsplit=2)
            try:
                lat, lon = (float(p) for p in parts[:2])
            except ValueError:
                lat = lon = float("nan")
            if len(parts) < 2 or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise Usage("usage: /location LAT LON LABEL   (e.g. /location 25.27 110.29 解东路)")
            return Message(
                "location",
                {
                    "Location_X": parts[0],
                    "Location_Y": parts[1],
                    "Scale": "15",
                    "Label": parts[2] if len(parts) > 2 else "",
                    "MsgId": _msg_id(),
                },
            )
    raise Usage(f"unknown command {command}; /help lists the commands")


def message_xml(openid: str, message: Message, create_time: int | None = None) -> str:
    """The message's XML as WeChat sends it."""
    fields = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": str(create_time if create_time is not None else int(time.time())),
        "MsgType": message.kind,
        **message.fields,
    }
    numeric = {"CreateTime", "MsgId", "Scale", "Location_X", "Location_Y"}
    parts = [
        f"<{name}>{value}</{name}>" if name in numeric else f"<{name}>{cdata(value)}</{name}>"
        for name, value in fields.items()
    ]
    return "<xml>" + "".join(parts) + "</xml>"


def format_reply(prefix: str, text: str) -> str:
    """``text`` after ``prefix``, its further lines indented to align with the first."""
    indent = "\n" + " " * len(prefix)
    return prefix + indent.join(text.splitlines() or [""])


class ReplyError(Exception):
    """The webhook's answer could not be read; the message says why."""


class ServerUnreachable(Exception):
    """Nothing answers at the server's address (refused, unknown host): the chat
    cannot go on. The message says which address and why."""


class Webhook:
    """The running server's ``/wechat``, talked to as WeChat does."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        aes_key: str | None,
        app_id: str | None,
        path: str = "/wechat",
    ) -> None:
        self.http = http
        self.url = f"{base_url}{path}"
        self.token = token
        self.app_id = app_id or ""
        self.crypto = WeChatCrypto(token, aes_key, self.app_id) if aes_key else None

    async def send(self, xml: str) -> tuple[int, str]:
        """POST the message; (status, body) of the answer, decrypted in safe mode."""
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(8)
        query = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = xml
        if self.crypto is not None:
            sealed = _xml_fields(self.crypto.encrypt_message(xml, nonce, timestamp))
            query.update(encrypt_type="aes", msg_signature=str(sealed["MsgSignature"]))
            body = (
                f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
                f"<Encrypt>{cdata(str(sealed['Encrypt']))}</Encrypt></xml>"
            )
        async with self.http.post(
            self.url,
            params=query,
            data=body.encode(),
            headers={"Content-Type": "text/xml"},
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT),
        ) as response:
            text = await response.text(errors="replace")
            if response.status == 200 and self.crypto is not None and _is_xml(text):
                text = self._decrypt(text)
            return response.status, text

    def _decrypt(self, body: str) -> str:
        assert self.crypto is not None
        try:
            outer = _xml_fields(body)
            plain = self.crypto.decrypt_message(
                {"Encrypt": outer["Encrypt"]},
                outer["MsgSignature"],
                outer["TimeStamp"],
                outer["Nonce"],
            )
        except Exception as exc:  # bad signature, other app id, bad padding, missing field
            raise ReplyError(f"cannot decrypt the reply ({type(exc).__name__})") from None
        return plain.decode() if isinstance(plain, bytes) else str(plain)


def render_reply(body: str) -> str | None:
    """What to print for a passive reply (plaintext XML); None for "success" or empty."""
    text = reply_text(body)
    if text is None or text.startswith("error: "):
        return text
    return format_reply(BOT, text)


def reply_text(body: str) -> str | None:
    """The words of a passive reply (plaintext XML); None for "success" or empty."""
    body = body.strip()
    if not body or body == "success":
        return None
    if not _is_xml(body):
        return f"(not XML) {body[:200]}"
    try:
        fields = _xml_fields(body)
    except ReplyError as exc:
        return f"error: {exc}"
    kind = str(fields.get("MsgType", ""))
    if kind == "text":
        return str(fields.get("Content", ""))
    if kind == "news":
        articles = fields.get("Articles")
        items = list(articles.values()) if isinstance(articles, dict) else []
        lines = [
            f"[article] {item.get('Title', '')} {item.get('Url', '')}".rstrip()
            for item in items
            if isinstance(item, dict)
        ]
        return "\n".join(lines) or "[news]"
    return f"[{kind or 'unknown'} reply]"


class Outbox:
    """Late replies kept by a server without WeChat credentials (``GET /dev/outbox``)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, openid: str) -> None:
        self.http = http
        self.base_url = base_url
        self.url = f"{base_url}/dev/outbox"
        self.openid = openid
        self.last_seq: int | None = None
        """The highest seq seen; None until the first successful look."""

    async def fetch(self) -> list[dict[str, Any]] | None:
        """The messages after ``last_seq`` (all of them before the first look), oldest
        first; None when the server has no outbox (404: it has real credentials)."""
        params = {"openid": self.openid, "after": str(self.last_seq or 0)}
        async with self.http.get(
            self.url, params=params, timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT)
        ) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                text = await response.text(errors="replace")
                raise ReplyError(f"HTTP {response.status} {text[:100]}")
            data = await response.json(content_type=None)
        raw = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise ReplyError("no message list in the answer")
        messages = [
            m
            for m in raw
            if isinstance(m, dict)
            and isinstance(m.get("seq"), int)
            and m.get("openid", self.openid) == self.openid
            and m["seq"] > (self.last_seq or 0)
        ]
        messages.sort(key=lambda m: int(m["seq"]))
        return messages


class Console:
    """Writes to ``out``; a late reply arriving while the prompt waits for input is
    printed on a line of its own and the prompt shown again."""

    def __init__(self, out: TextIO, *, prompt: bool) -> None:
        self.out = out
        self.prompt = prompt
        self.prompting = False

    def print(self, text: str) -> None:
        if self.prompting:
            self.out.write("\r\x1b[K" if _isatty(self.out) else "\n")
        self.out.write(text + "\n")
        if self.prompting:
            self.out.write(PROMPT)
        self.out.flush()

    def show_prompt(self) -> None:
        if self.prompt:
            self.out.write(PROMPT)
            self.out.flush()
            self.prompting = True

    def got_input(self) -> None:
        self.prompting = False


async def chat(
    base_url: str,
    token: str,
    *,
    openid: str,
    aes_key: str | None = None,
    app_id: str | None = None,
    path: str = "/wechat",
    input_lines: AsyncIterator[str] | None = None,
    out: TextIO | None = None,
    poll_interval: float = 0.5,
) -> None:
    """Chat as ``openid`` with the server at ``base_url`` until /quit or end of input.

    ``input_lines`` are the lines typed (default: stdin, read without blocking the
    event loop). Everything is printed to ``out``; a refused request or an answer
    that cannot be read is printed as one ``error:`` line and the chat goes on.

    Raises :class:`ServerUnreachable` when nothing answers at ``base_url`` before the
    first message, and when a message cannot reach it later unless a person is
    typing at a terminal (who may wait for the server to come back): a script
    piping lines in must not end as if all went well.
    """
    base_url = normalise_base_url(base_url)
    interactive = input_lines is None and _isatty(sys.stdin)
    console = Console(out or sys.stdout, prompt=interactive)  # stdout now, not at import
    lines = input_lines if input_lines is not None else stdin_lines()
    mode = " (safe mode)" if aes_key else ""
    console.print(
        f"Chatting with {base_url}{path}{mode} as {openid}. /help lists the commands, /quit leaves."
    )
    # A connection per request: a person types a line every few seconds, and a
    # connection kept from the previous one may belong to a server since stopped or
    # restarted (its failure would not say whether the server is there now).
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        webhook = Webhook(http, base_url, token, aes_key=aes_key, app_id=app_id, path=path)
        outbox = Outbox(http, base_url, openid)
        # The baseline comes before the first message, so that no late reply to it
        # can be taken for an old one; it is also the check that the server is there.
        polling = await _poll_once(outbox, console, initial=True)
        poller = (
            asyncio.create_task(_poll(outbox, console, poll_interval), name="outbox poll")
            if polling
            else None
        )
        try:
            await _converse(webhook, openid, lines, console, give_up=not interactive)
        finally:
            if poller is not None:
                poller.cancel()
                try:
                    await poller
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise


async def _converse(
    webhook: Webhook, openid: str, lines: AsyncIterator[str], console: Console, *, give_up: bool
) -> None:
    while True:
        console.show_prompt()
        try:
            line = await anext(lines)
        except StopAsyncIteration:
            break
        finally:
            console.got_input()
        line = line.strip()
        if not line:
            continue
        try:
            message = parse_input(line)
        except Usage as exc:
            console.print(str(exc))
            continue
        if message is None:
            break
        await _send(webhook, message_xml(openid, message), console, give_up=give_up)


async def _send(webhook: Webhook, xml: str, console: Console, *, give_up: bool) -> None:
    """Send one message and print the answer; ``give_up``: raise
    :class:`ServerUnreachable` rather than print it when the server is not there."""
    try:
        status, body = await webhook.send(xml)
    except TimeoutError:
        console.print(f"error: no answer from {webhook.url} in {SEND_TIMEOUT:.0f} s")
        return
    except aiohttp.ClientConnectorError as exc:
        if give_up:
            raise ServerUnreachable(f"cannot reach {webhook.url}: {exc}") from None
        console.print(f"error: cannot reach {webhook.url}: {exc}")
        return
    except aiohttp.ClientError as exc:
        console.print(f"error: cannot reach {webhook.url}: {exc}")
        return
    except ReplyError as exc:
        console.print(f"error: {exc}")
        return
    if status != 200:
        console.print(f"error: HTTP {status} {body[:100]}")
        return
    shown = render_reply(body)
    if shown is not None:
        console.print(shown)


async def _poll(outbox: Outbox, console: Console, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        if not await _poll_once(outbox, console):
            return


async def _poll_once(outbox: Outbox, console: Console, *, initial: bool = False) -> bool:
    """Look at the outbox and print what is new; False when there is none to poll.

    ``initial``: the first look, before any message; raise :class:`ServerUnreachable`
    if nothing answers at the server's address."""
    try:
        messages = await outbox.fetch()
    except aiohttp.ClientConnectorError as exc:
        if initial:
            raise ServerUnreachable(f"cannot reach {outbox.base_url}: {exc}") from None
        return True  # the send path reports it
    except (aiohttp.ClientError, TimeoutError, ValueError, ReplyError):
        # The send path reports an unreachable server; the poll stays quiet and
        # tries again.
        return True
    if messages is None:
        console.print(NO_LATE_REPLIES)
        return False
    first_look = outbox.last_seq is None
    for message in messages:
        outbox.last_seq = max(outbox.last_seq or 0, int(message["seq"]))
        if not (initial or first_look):
            console.print(format_reply(BOT_LATER, str(message.get("text", ""))))
    if outbox.last_seq is None:
        outbox.last_seq = 0
    return True


async def stdin_lines() -> AsyncIterator[str]:
    """Lines of stdin, read by a daemon thread so that the event loop never blocks
    and Ctrl+C never waits for a line (a thread of asyncio's executor would)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, line)

    def read() -> None:
        while True:
            try:
                line = sys.stdin.readline()
            except UnicodeDecodeError:
                continue
            except (OSError, ValueError):  # stdin closed
                line = ""
            if not line:
                deliver(None)
                return
            deliver(line)

    threading.Thread(target=read, name="stdin reader", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


def normalise_base_url(base_url: str) -> str:
    """``http://host:port`` from what an operator may paste: no scheme, a trailing
    slash, or the whole server URL ``…/wechat`` printed by ``order-menu serve``."""
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    url = url.removesuffix("/wechat")
    return url.rstrip("/")


def run_chat(
    base_url: str,
    token: str,
    openid: str,
    aes_key: str | None,
    app_id: str | None,
    path: str = "/wechat",
) -> None:
    """Run :func:`chat` on stdin and stdout until /quit, end of input or Ctrl+C.

    Raises :class:`ServerUnreachable` as :func:`chat` does."""
    try:
        asyncio.run(chat(base_url, token, openid=openid, aes_key=aes_key, app_id=app_id, path=path))
    except KeyboardInterrupt:
        print(file=sys.stdout, flush=True)


# --- helpers ---------------------------------------------------------------------------


def _msg_id() -> str:
    """A MsgId: a random positive 63-bit number, unique across chats with the same
    server (the server takes a repeated MsgId for WeChat retrying a message)."""
    return str(secrets.randbits(63) | 1 << 60)


def _media_id() -> str:
    return "chat_" + secrets.token_hex(12)


def _is_xml(text: str) -> bool:
    return text.lstrip().startswith("<xml")


def _xml_fields(xml: str) -> dict[str, Any]:
    """The children of the root element (nested ones as dicts), read by the
    service's own parser (no DTD in any encoding, bounded nesting)."""
    try:
        root = parse_element(xml)
    except Rejected as exc:
        raise ReplyError(f"reply refused: {exc.reason}") from None
    return _children(root)


def _children(element: ElementTree.Element) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for index, child in enumerate(element):
        value: Any = _children(child) if len(child) else (child.text or "")
        # Repeated tags (<item> in <Articles>) are kept apart.
        name = child.tag if child.tag not in result else f"{child.tag}#{index}"
        result[name] = value
    return result


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
