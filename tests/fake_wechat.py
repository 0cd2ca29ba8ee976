"""A fake WeChat API server for tests: a real aiohttp server on 127.0.0.1.

It answers the endpoints the bot uses the way WeChat does (HTTP 200 with a JSON
``errcode``, content type ``text/plain``), so clients are tested over real HTTP:

- ``POST /cgi-bin/stable_token``: checks grant type, AppID (40013) and AppSecret
  (40125). Normal mode hands out the current token while more than 5 minutes of it
  remain, else a new one (the old one stays valid until it expires); ``force_refresh``
  issues a new token and invalidates all others, except within ``force_interval``
  (30 s) of the last forced refresh, when it returns the current token unchanged
  (WeChat: "连续使用该模式时，请保证调用时间隔至少为30s，否则不会刷新").
- ``POST /cgi-bin/message/custom/send`` (text, news): 41001 without a token, 40001 for an
  unknown token, 42001 for an expired one; 40003 unknown openid, 43004 not following,
  45015 when the user's 48-hour window is closed, 45008 for more than one article.
- ``POST /cgi-bin/message/template/send``: returns a ``msgid``; no 48-hour window.
- ``POST /cgi-bin/menu/create``: checks the menu's shape (40016–40027) and keeps it.
- ``GET /cgi-bin/user/info``: the profile, ``subscribe: 0`` for a non-follower.
- ``POST /cgi-bin/message/mass/send`` (text, by openid list): 2–10,000 openids (40130),
  40003 for an openid it does not know, a ``clientmsgid`` of at most 64 characters
  (45067); a clientmsgid seen before is answered 45065 with the first call's
  ``msg_id`` and sends nothing; at most :attr:`~FakeWeChat.mass_per_minute` calls a
  minute (45009). Each follower receives at most :attr:`~FakeWeChat.mass_quota` mass
  messages a month: the rest are filtered, as non-followers are. Each call becomes a
  :class:`MassJob` whose :meth:`~MassJob.finish_event` has the fields of WeChat's
  ``MASSSENDJOBFINISH`` event.
- ``POST /cgi-bin/message/mass/preview``: to one user by ``touser`` or ``towxname``.
- ``POST /cgi-bin/qrcode/create``: a permanent string-scene code (``QR_LIMIT_STR_SCENE``,
  scene_str of 1–64 characters, else 40097); the same scene gets the same ticket and
  url, and :meth:`FakeWeChat.scene_of` tells which scene a url carries.

Knobs: :meth:`FakeWeChat.add_user`, :meth:`~FakeWeChat.fail_next` (errcodes for the next
calls of an endpoint), :meth:`~FakeWeChat.fail_http` (HTTP statuses for the next calls,
as from WeChat's gateway), :attr:`~FakeWeChat.rate_limit` (calls per second, then 45009),
:meth:`~FakeWeChat.set_delay` (slow to act), :meth:`~FakeWeChat.set_slow` (acts at once,
slow to answer), :attr:`~FakeWeChat.close_kept_alive` (closes a kept-alive connection
when its next request comes, unread), :meth:`~FakeWeChat.expire_tokens`,
:meth:`~FakeWeChat.invalidate_tokens`, :meth:`~FakeWeChat.age_tokens`; every request is
kept in :attr:`~FakeWeChat.requests`, every message it accepted in
:attr:`~FakeWeChat.sent` (:meth:`~FakeWeChat.deliveries` counts them per user).

Use it as ``async with FakeWeChat() as fake: ... fake.base_url ...``, or make a pytest
fixture with ``fake_wechat = fake_wechat_fixture()`` in a test module.

:func:`unreachable` is the other kind of peer: an address whose connections never open.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

TOKEN_PATH = "/cgi-bin/stable_token"
CUSTOM_SEND_PATH = "/cgi-bin/message/custom/send"
TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"
MENU_CREATE_PATH = "/cgi-bin/menu/create"
USER_INFO_PATH = "/cgi-bin/user/info"
MASS_SEND_PATH = "/cgi-bin/message/mass/send"
MASS_PREVIEW_PATH = "/cgi-bin/message/mass/preview"
QRCODE_CREATE_PATH = "/cgi-bin/qrcode/create"

RENEW_WITHIN = 300.0
"""Normal-mode stable_token returns a new token when less than this many seconds remain."""

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    44003: "empty news data",
    44004: "empty content",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    40130: "invalid openid list size, at least two openid",
    45065: "clientmsgid exist",
    45067: "clientmsgid size out of limit",
    40097: "invalid args",
    47001: "data format error",
}

BUTTON_TYPES = frozenset(
    {
        "click",
        "view",
        "miniprogram",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "media_id",
        "article_id",
        "article_view_limited",
    }
)


class WeChatReply(Exception):
    """Stop handling a request and answer with this errcode (HTTP 200, as WeChat does)."""

    def __init__(self, errcode: int) -> None:
        super().__init__(errcode)
        self.errcode = errcode


@dataclass(frozen=True)
class Recorded:
    """One request the fake received, whatever it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    """The parsed JSON body (None for GET or a body that is not JSON)."""
    raw: bytes
    at: float
    """When it arrived (``time.monotonic()``), to check the pauses between retries."""


@dataclass
class FakeUser:
    openid: str
    following: bool = True
    window_open: bool = True
    """Inside the 48-hour window in which customer-service messages are allowed."""
    nickname: str = ""
    subscribe_time: int = field(default_factory=lambda: int(time.time()))
    wxname: str = ""
    """Their WeChat id (微信号), to which a mass-send preview can be addressed."""


@dataclass
class MassJob:
    """One mass send the fake took: who it went to and WeChat's later counts."""

    msg_id: int
    client_msg_id: str
    touser: list[str]
    text: str
    delivered: list[str]
    """The followers who received it (not filtered)."""

    def finish_event(self) -> dict[str, Any]:
        """The fields of WeChat's ``MASSSENDJOBFINISH`` event for this job."""
        return {
            "Event": "MASSSENDJOBFINISH",
            "MsgID": self.msg_id,
            "Status": "send success",
            "TotalCount": len(self.touser),
            "FilterCount": len(self.delivered),
            "SentCount": len(self.delivered),
            "ErrorCount": 0,
        }


class FakeWeChat:
    """The WeChat API, faithfully enough to test a client against; see the module doc."""

    def __init__(
        self,
        *,
        app_id: str = "wx0fake0app0id00",
        app_secret: str = "fake-app-secret-0123456789abcdef",
        expires_in: int = 7200,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        force_interval: float = 30.0,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.expires_in = expires_in
        """Lifetime in seconds of the tokens issued from now on."""
        self.rate_limit = rate_limit
        """Calls per ``rate_window`` seconds (all but stable_token) before answering 45009."""
        self.rate_window = rate_window
        self.force_interval = force_interval
        """Seconds after a forced refresh during which another one returns the same token."""
        self.users: dict[str, FakeUser] = {}
        self.requests: list[Recorded] = []
        self.sent: list[dict[str, Any]] = []
        """Messages accepted (customer-service and template bodies), in order."""
        self.menu: dict[str, Any] | None = None
        self.mass_jobs: list[MassJob] = []
        """Mass sends taken (a repeated clientmsgid adds none)."""
        self.mass_received: Counter[str] = Counter()
        """Mass messages each follower received (this fake's month is its lifetime)."""
        self.mass_quota = 4
        """Mass messages a follower of a service account receives a month."""
        self.mass_per_minute = 60
        """Mass-send calls a minute before answering 45009."""
        self.mass_minute = 60.0
        """The length of that minute, in seconds (a test may shorten it)."""
        self.previews: list[dict[str, Any]] = []
        self._mass_calls: deque[float] = deque()
        self.qrcodes: dict[str, tuple[str, str]] = {}
        """Permanent QR codes made: scene -> (ticket, url)."""
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry time
        self._current: str | None = None
        self._failures: dict[str, deque[int]] = {}
        self._http_failures: dict[str, deque[int]] = {}
        self.close_kept_alive = False
        """When set, a request that comes on a connection that already carried one is not
        read: the connection is closed, as by a server whose keep-alive timeout ran out
        just as the client reused the connection. Counted in :attr:`closed_unread`."""
        self.closed_unread = 0
        self._used_connections: set[object] = set()
        self._delays: dict[str, float] = {}
        self._slow: dict[str, float] = {}
        self._last_forced: float | None = None
        self._recent_calls: deque[float] = deque()
        self._msgids = itertools.count(1_000_000)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> FakeWeChat:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        routes: dict[str, Callable[[web.Request, Any], Awaitable[dict[str, Any]]]] = {
            TOKEN_PATH: self._stable_token,
            CUSTOM_SEND_PATH: self._custom_send,
            TEMPLATE_SEND_PATH: self._template_send,
            MENU_CREATE_PATH: self._menu_create,
            USER_INFO_PATH: self._user_info,
            MASS_SEND_PATH: self._mass_send,
            MASS_PREVIEW_PATH: self._mass_preview,
            QRCODE_CREATE_PATH: self._qrcode_create,
        }
        for path, handler in routes.items():
            app.router.add_route("*", path, self._endpoint(handler))
        # Cancel handlers whose client went away (timeouts), and do not wait for them.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- knobs -----------------------------------------------------------------------

    def add_user(
        self,
        openid: str,
        *,
        following: bool = True,
        window_open: bool = True,
        wxname: str = "",
    ) -> None:
        self.users[openid] = FakeUser(
            openid, following=following, window_open=window_open, wxname=wxname
        )

    def fail_next(self, path: str, errcodes: Iterable[int]) -> None:
        """Answer the next calls of ``path`` with these errcodes, one call each, in order
        (0: that call goes through)."""
        self._failures.setdefault(path, deque()).extend(errcodes)

    def fail_http(self, path: str, statuses: Iterable[int]) -> None:
        """Answer the next calls of ``path`` with these HTTP statuses (e.g. 502 from a
        gateway in front of WeChat), one call each, in order, without acting on them."""
        self._http_failures.setdefault(path, deque()).extend(statuses)

    def set_delay(self, path: str, seconds: float) -> None:
        """Wait this long before acting on ``path`` and answering (to make clients time
        out). A client that gives up first leaves nothing done: its request is
        dropped with the connection."""
        self._delays[path] = seconds

    def set_slow(self, path: str, seconds: float) -> None:
        """Act on ``path`` at once (a message is delivered), answer ``seconds`` later:
        WeChat under load. A client that gives up first never learns that it worked."""
        self._slow[path] = seconds

    def expire_tokens(self) -> None:
        """Every issued token is now expired (42001), as after two hours."""
        now = time.monotonic()
        self._tokens = dict.fromkeys(self._tokens, now - 1)

    def invalidate_tokens(self) -> None:
        """Forget every issued token (40001), as when another party forced a refresh."""
        self._tokens.clear()
        self._current = None

    def age_tokens(self, remaining: float) -> None:
        """Every live token now expires in ``remaining`` seconds."""
        expiry = time.monotonic() + remaining
        self._tokens = {token: min(at, expiry) for token, at in self._tokens.items()}

    # --- what happened ---------------------------------------------------------------

    def calls(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    @property
    def token_fetches(self) -> int:
        return len(self.calls(TOKEN_PATH))

    @property
    def forced_fetches(self) -> int:
        return sum(
            1
            for r in self.calls(TOKEN_PATH)
            if isinstance(r.body, dict) and r.body.get("force_refresh")
        )

    @property
    def issued_tokens(self) -> list[str]:
        return list(self._tokens)

    def mass_lists(self) -> list[list[str]]:
        """The openid list of every mass-send call that passed the checks, repeats of
        a clientmsgid included (the sender's view of what it asked for)."""
        return [
            list(r.body["touser"])
            for r in self.calls(MASS_SEND_PATH)
            if isinstance(r.body, dict) and isinstance(r.body.get("touser"), list)
        ]

    def scene_of(self, url: str) -> str | None:
        """The scene of the permanent QR code whose content is ``url``; None if it is
        none of the codes made here."""
        return next((scene for scene, (_, made) in self.qrcodes.items() if made == url), None)

    def deliveries(self) -> Counter[str]:
        """How many messages (customer-service and template) each openid received."""
        return Counter(str(message.get("touser")) for message in self.sent)

    # --- plumbing --------------------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[web.Request, Any], Awaitable[dict[str, Any]]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            connection = request.transport
            if connection is not None and self.close_kept_alive:
                if connection in self._used_connections:
                    self.closed_unread += 1
                    connection.close()  # the client sees the connection closed, no answer
                    return web.Response(status=503)  # never written: the connection is gone
                self._used_connections.add(connection)
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.requests.append(
                Recorded(
                    request.method, request.path, dict(request.query), body, raw, time.monotonic()
                )
            )
            statuses = self._http_failures.get(request.path)
            if statuses:
                status = statuses.popleft()
                return web.Response(status=status, text=f"<html>{status} from a gateway</html>")
            delay = self._delays.get(request.path, 0.0)
            if delay:
                await asyncio.sleep(delay)
            try:
                self._injected_failure(request.path)
                reply = await handler(request, body)
            except WeChatReply as exc:
                reply = {"errcode": exc.errcode, "errmsg": ERRMSG.get(exc.errcode, "error")}
            slow = self._slow.get(request.path, 0.0)
            if slow:  # done already; only the answer is late
                await asyncio.sleep(slow)
            return web.Response(
                text=json.dumps(reply, ensure_ascii=False), content_type="text/plain"
            )

        return serve

    def _injected_failure(self, path: str) -> None:
        queue = self._failures.get(path)
        if queue:
            errcode = queue.popleft()
            if errcode:  # 0: this call goes through
                raise WeChatReply(errcode)

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        while self._recent_calls and self._recent_calls[0] <= now - self.rate_window:
            self._recent_calls.popleft()
        if len(self._recent_calls) >= self.rate_limit:
            raise WeChatReply(45009)
        self._recent_calls.append(now)

    def _check_token(self, request: web.Request) -> None:
        token = request.query.get("access_token")
        if not token:
            raise WeChatReply(41001)
        expiry = self._tokens.get(token)
        if expiry is None:
            raise WeChatReply(40001)
        if expiry <= time.monotonic():
            raise WeChatReply(42001)

    def _api_call(self, request: web.Request, method: str = "POST") -> None:
        """What every API endpoint checks first: method, rate limit, token."""
        if request.method != method:
            raise WeChatReply(43002 if method == "POST" else 43001)
        self._check_rate()
        self._check_token(request)

    def _user(self, openid: object, *, following: bool = True) -> FakeUser:
        user = self.users.get(openid) if isinstance(openid, str) else None
        if user is None:
            raise WeChatReply(40003)
        if following and not user.following:
            raise WeChatReply(43004)
        return user

    # --- endpoints -------------------------------------------------------------------

    async def _stable_token(self, request: web.Request, body: Any) -> dict[str, Any]:
        if request.method != "POST":
            raise WeChatReply(43002)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        if body.get("grant_type") != "client_credential":
            raise WeChatReply(40002)
        if not body.get("appid"):
            raise WeChatReply(41002)
        if not body.get("secret"):
            raise WeChatReply(41004)
        if body["appid"] != self.app_id:
            raise WeChatReply(40013)
        if body["secret"] != self.app_secret:
            raise WeChatReply(40125)
        now = time.monotonic()
        current = self._current
        live = current is not None and self._tokens.get(current, now) > now
        if body.get("force_refresh") is True:
            last = self._last_forced
            if live and last is not None and now - last < self.force_interval:
                assert current is not None
                return {"access_token": current, "expires_in": int(self._tokens[current] - now)}
            self._last_forced = now
            self._tokens.clear()
        elif current is not None and self._tokens.get(current, now) - now > RENEW_WITHIN:
            return {"access_token": current, "expires_in": int(self._tokens[current] - now)}
        token = secrets.token_urlsafe(48)
        self._tokens[token] = now + self.expires_in
        self._current = token
        return {"access_token": token, "expires_in": self.expires_in}

    async def _custom_send(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        user = self._user(body.get("touser"))
        msgtype = body.get("msgtype")
        if msgtype == "text":
            if not (body.get("text") or {}).get("content"):
                raise WeChatReply(44004)
        elif msgtype == "news":
            articles = (body.get("news") or {}).get("articles") or []
            if not articles:
                raise WeChatReply(44003)
            if len(articles) > 1:
                raise WeChatReply(45008)
        else:
            raise WeChatReply(40008)
        if not user.window_open:
            raise WeChatReply(45015)
        self.sent.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    async def _template_send(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        self._user(body.get("touser"))
        if not body.get("template_id"):
            raise WeChatReply(40037)
        if not isinstance(body.get("data"), dict):
            raise WeChatReply(47001)
        self.sent.append(body)
        return {"errcode": 0, "errmsg": "ok", "msgid": next(self._msgids)}

    async def _menu_create(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        check_menu(body)
        self.menu = body
        return {"errcode": 0, "errmsg": "ok"}

    async def _user_info(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request, method="GET")
        user = self._user(request.query.get("openid"), following=False)
        if not user.following:
            return {"subscribe": 0, "openid": user.openid}
        return {
            "subscribe": 1,
            "openid": user.openid,
            "nickname": user.nickname,
            "language": request.query.get("lang", "zh_CN"),
            "subscribe_time": user.subscribe_time,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
            "qr_scene": 0,
            "qr_scene_str": "",
        }

    async def _mass_send(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        now = time.monotonic()
        while self._mass_calls and self._mass_calls[0] <= now - self.mass_minute:
            self._mass_calls.popleft()
        if len(self._mass_calls) >= self.mass_per_minute:
            raise WeChatReply(45009)
        self._mass_calls.append(now)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        touser = body.get("touser")
        if not isinstance(touser, list) or not 2 <= len(touser) <= 10_000:
            raise WeChatReply(40130)
        client_msg_id = body.get("clientmsgid", "")
        if not isinstance(client_msg_id, str) or len(client_msg_id) > 64:
            raise WeChatReply(45067)
        if body.get("msgtype") != "text":
            raise WeChatReply(40008)
        content = (body.get("text") or {}).get("content")
        if not content:
            raise WeChatReply(44004)
        for job in self.mass_jobs:
            if client_msg_id and job.client_msg_id == client_msg_id:
                return {"errcode": 45065, "errmsg": ERRMSG[45065], "msg_id": job.msg_id}
        users = [self._user(openid, following=False) for openid in touser]
        delivered = []
        for user in users:
            if user.following and self.mass_received[user.openid] < self.mass_quota:
                self.mass_received[user.openid] += 1
                delivered.append(user.openid)
        job = MassJob(next(self._msgids), client_msg_id, list(touser), content, delivered)
        self.mass_jobs.append(job)
        return {
            "errcode": 0,
            "errmsg": "send job submission success",
            "msg_id": job.msg_id,
            "msg_data_id": job.msg_id * 10,
        }

    async def _mass_preview(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        wxname = body.get("towxname")
        if wxname:
            if not any(u.wxname == wxname and u.following for u in self.users.values()):
                raise WeChatReply(40003)
        else:
            self._user(body.get("touser"))
        if not (body.get("text") or {}).get("content"):
            raise WeChatReply(44004)
        self.previews.append(body)
        return {"errcode": 0, "errmsg": "preview success", "msg_id": next(self._msgids)}

    async def _qrcode_create(self, request: web.Request, body: Any) -> dict[str, Any]:
        self._api_call(request)
        if not isinstance(body, dict):
            raise WeChatReply(47001)
        if body.get("action_name") != "QR_LIMIT_STR_SCENE":
            raise WeChatReply(40097)  # the only kind the bot makes; others are not faked
        scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str")
        if not isinstance(scene, str) or not 1 <= len(scene) <= 64:
            raise WeChatReply(40097)
        if scene not in self.qrcodes:
            code = secrets.token_urlsafe(16)
            self.qrcodes[scene] = (secrets.token_urlsafe(48), f"http://weixin.qq.com/q/{code}")
        ticket, url = self.qrcodes[scene]
        return {"ticket": ticket, "url": url}


def check_menu(menu: dict[str, Any]) -> None:
    """WeChat's rules for a custom menu: 1–3 buttons, each a leaf or 1–5 sub-buttons."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise WeChatReply(40016)
    for button in buttons:
        if not isinstance(button, dict):
            raise WeChatReply(40017)
        subs = button.get("sub_button")
        if subs:
            if not isinstance(subs, list) or len(subs) > 5:
                raise WeChatReply(40023)
            _check_button(button, 16, leaf=False, codes=(40017, 40018, 40019, 40020))
            for sub in subs:
                if not isinstance(sub, dict):
                    raise WeChatReply(40024)
                _check_button(sub, 60, leaf=True, codes=(40024, 40025, 40026, 40027))
        else:
            _check_button(button, 16, leaf=True, codes=(40017, 40018, 40019, 40020))


def _check_button(
    button: dict[str, Any], max_name_bytes: int, *, leaf: bool, codes: tuple[int, int, int, int]
) -> None:
    bad_type, bad_name, bad_key, bad_url = codes
    name = button.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > max_name_bytes:
        raise WeChatReply(bad_name)
    if not leaf:
        return
    kind = button.get("type")
    if kind not in BUTTON_TYPES:
        raise WeChatReply(bad_type)
    if kind == "view":
        url = button.get("url")
        if not isinstance(url, str) or not url or len(url.encode()) > 1024:
            raise WeChatReply(bad_url)
    elif kind not in ("miniprogram", "media_id", "article_id", "article_view_limited"):
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode()) > 128:
            raise WeChatReply(bad_key)


def fake_wechat_fixture(name: str = "fake_wechat", **options: Any) -> Any:
    """A pytest fixture yielding a started :class:`FakeWeChat` (options go to its constructor).

    In a test module: ``fake_wechat = fake_wechat_fixture()``, then take ``fake_wechat``
    as a test argument.
    """

    @pytest.fixture(name=name)
    async def fixture() -> AsyncIterator[FakeWeChat]:
        async with FakeWeChat(**options) as fake:
            yield fake

    return fixture


@contextlib.contextmanager
def unreachable() -> Iterator[str]:
    """``http://127.0.0.1:<port>``, where no connection ever opens: WeChat behind a
    firewall that drops SYNs.

    A socket listens with the smallest backlog and never accepts; connections fill
    that backlog first, and after them Linux drops every SYN (``tcp_abort_on_overflow``
    is 0 by default), so a client's connect hangs until its own timeout, as it does
    when packets to WeChat are dropped on the way.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.5)
            fillers.append(filler)
            try:
                filler.connect(address)
            except TimeoutError:
                break  # the backlog is full: this SYN went unanswered
        else:
            raise RuntimeError("the listen backlog never filled up")
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
