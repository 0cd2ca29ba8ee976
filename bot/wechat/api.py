"""An async client for the WeChat official-account API, on the service's aiohttp session.

Why our own client rather than wechatpy's: that one is synchronous, fetches tokens from
the official host whatever base URL is configured, has no lock around token refresh and
retries a persistent 40001 without bound. This one:

- caches the access token in the database and refreshes it by a single flight per
  process (an asyncio lock), ahead of expiry, without holding a database lock while
  it waits for WeChat (see :mod:`bot.wechat.token_store` for processes that refresh
  at once);
- on an invalid-token errcode refreshes once, forcing a new token, and retries once;
  a second rejection raises :class:`InvalidCredential` instead of looping;
- retries what WeChat certainly did not do (-1 system busy, 45009/45011 rate limits,
  a connection refused or not made within the connect timeout) a bounded number of
  times with exponential backoff and jitter;
- after an ambiguous outcome (:class:`~bot.wechat.errors.OutcomeUnknown`: the
  request went out and no clear answer came back) retries only calls whose
  :class:`SendPolicy` says a repeat is harmless. Reads, the token and the menu are;
  a message to a person is not, unless its caller says so: WeChat has no idempotency
  key, and a message repeated after a timeout may be delivered twice. Such a send
  raises ``OutcomeUnknown`` after its one attempt and the caller records it;
- never lets the token's trouble pass for the message's: when no access token can be
  had, the message was not sent, and the call raises
  :class:`~bot.wechat.errors.WeChatUnavailable` ("not sent: no access token …"),
  which callers retry later, even when the token endpoint timed out or answered 5xx
  (an ``OutcomeUnknown`` of the token fetch, not of the message);
- makes every HTTP request through :mod:`bot.wechat.transport`: a timeout with a
  connect limit of its own, and a new connection for each at-most-once send, so that
  "not sent" and "may have arrived" can be told apart; it never logs the secret or a
  token.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs.backoff import backoff
from bot.metrics import WECHAT_ERRORS
from bot.wechat.errors import (
    TOKEN_ERRCODES,
    InvalidCredential,
    OutcomeUnknown,
    RateLimited,
    Refused,
    WeChatError,
    WeChatUnavailable,
    describe,
    error_for,
    is_retryable,
    may_have_arrived,
)
from bot.wechat.token_store import StoredToken, TokenStore
from bot.wechat.transport import request as http_request

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_SENT = "not sent: "
"""How the message of a :class:`WeChatUnavailable` of ours begins: nothing went out."""

BACKOFF_CAP = 10.0
"""Longest pause between two attempts, in seconds, however many attempts came before."""


class SendPolicy(enum.Enum):
    """Whether a call may be made again after an ambiguous outcome (:class:`OutcomeUnknown`).

    Failures WeChat certainly did not act on are retried whatever the policy; this
    decides only about "sent, and no clear answer". That is the caller's decision,
    stated at the call: the client cannot know whether a second copy of a message
    would hurt.
    """

    AT_MOST_ONCE = "at most once"
    """Never repeat after an ambiguous outcome: raise ``OutcomeUnknown`` at once. The
    default of every send: a resident must not get a notice twice."""
    REPEATABLE = "repeatable"
    """Repeating it changes nothing more (a read, the token, replacing the menu), or
    the caller accepts a possible second copy: retry like any transient failure."""


CLIENT_MSG_ID_EXISTS = 45065
"""A mass send's clientmsgid was used in the last 24 hours: that call was taken, and
its ``msg_id`` comes with this answer."""


@dataclass(frozen=True)
class MassAccepted:
    """WeChat took a mass send: the job's ids (the finish event names ``msg_id``)."""

    msg_id: int
    msg_data_id: int | None
    repeated: bool = False
    """The call repeated one WeChat had already taken (45065): nothing new was sent."""


@dataclass(frozen=True)
class NewsArticle:
    """One article of a customer-service news message (WeChat now allows only one)."""

    title: str
    description: str
    url: str
    picurl: str = ""


class WeChatAPI:
    """The outbound WeChat API of one community's official account."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        base_url: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        community_id: str,
        http: aiohttp.ClientSession,
        timeout: float = 5.0,
        max_attempts: int = 4,
        backoff_base: float = 0.2,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._app_id = app_id
        self._app_secret = app_secret
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._store = TokenStore(sessionmaker, community_id)
        self._cached: StoredToken | None = None
        self._refresh_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"WeChatAPI(app_id={self._app_id!r}, base_url={self._base_url!r})"

    # --- access token ----------------------------------------------------------------

    async def access_token(self) -> str:
        """A token that is valid for a while yet; fetched only when none is."""
        cached = self._cached
        if cached is not None and cached.usable():
            return cached.token
        return (await self._refresh(stale=None)).token

    async def _refresh(self, *, stale: str | None) -> StoredToken:
        """Make a usable token other than ``stale`` current, fetching one only if needed.

        ``stale`` is a token WeChat just rejected: it forces a fetch with
        ``force_refresh`` unless another task or process already replaced it.
        Whoever waited for the lock first looks at what the previous holder left; the
        store looks at the database before each attempt.
        """

        def keep(candidate: StoredToken) -> bool:
            return candidate.usable() and candidate.token != stale

        async with self._refresh_lock:
            if self._cached is not None and keep(self._cached):
                return self._cached
            force = stale is not None
            stored = await self._with_retries(
                "stable_token",
                lambda: self._store.refresh(lambda: self._fetch_token(force), keep, forced=force),
                # Another fetch after a lost answer only returns the token WeChat
                # issued meanwhile: a forced one within 30 s of the last does not
                # refresh again (WeChat's getStableAccessToken documentation).
                policy=SendPolicy.REPEATABLE,
            )
            self._cached = stored
            return stored

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        """One attempt at ``stable_token``; the caller holds the refresh lock."""
        body = {
            "grant_type": "client_credential",
            "appid": self._app_id,
            "secret": self._app_secret,
            "force_refresh": force,
        }
        reply = await self._request_once("/cgi-bin/stable_token", body, {})
        errcode = int(reply.get("errcode", 0))
        if errcode:  # a refused AppID/AppSecret (40013, 40125 …) is an InvalidCredential
            raise error_for(errcode, str(reply.get("errmsg", "")))
        token, expires_in = reply.get("access_token"), reply.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise WeChatUnavailable(-1, "stable_token reply has no access_token/expires_in")
        log.info("fetched a WeChat access token (forced: %s, expires in %ss)", force, expires_in)
        return token, expires_in

    # --- API calls -------------------------------------------------------------------

    async def send_text(
        self, openid: str, text: str, *, policy: SendPolicy = SendPolicy.AT_MOST_ONCE
    ) -> None:
        """Customer-service text message (only within the resident's 48-hour window).

        Raises :class:`OutcomeUnknown` when it may or may not have arrived (see
        :class:`SendPolicy`).
        """
        await self._call(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
            policy=policy,
        )

    async def send_news(
        self,
        openid: str,
        articles: list[NewsArticle],
        *,
        policy: SendPolicy = SendPolicy.AT_MOST_ONCE,
    ) -> None:
        """Customer-service news message: linked cards with title, description and image."""
        await self._call(
            "/cgi-bin/message/custom/send",
            {
                "touser": openid,
                "msgtype": "news",
                "news": {"articles": [asdict(article) for article in articles]},
            },
            policy=policy,
        )

    async def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        url: str | None = None,
        *,
        policy: SendPolicy = SendPolicy.AT_MOST_ONCE,
    ) -> int:
        """Template message (allowed outside the 48-hour window); returns WeChat's msgid."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {name: {"value": value} for name, value in data.items()},
        }
        if url is not None:
            body["url"] = url
        reply = await self._call("/cgi-bin/message/template/send", body, policy=policy)
        msgid = reply.get("msgid")
        if not isinstance(msgid, int):  # errcode 0 says it was taken: not a refusal
            raise OutcomeUnknown(-1, "reply has no msgid")
        return msgid

    async def mass_send(self, openids: list[str], text: str, client_msg_id: str) -> MassAccepted:
        """WeChat's mass send (群发) of a text to a list of 2–10,000 followers.

        Repeatable: ``client_msg_id`` makes a second call with it a no-op that
        WeChat answers with 45065 and the first call's ``msg_id`` (for 24 hours), so
        a call whose answer was lost, or that a crash interrupted, is simply made
        again. The result counts come later, in a ``MASSSENDJOBFINISH`` event.
        """
        reply = await self._call(
            "/cgi-bin/message/mass/send",
            {
                "touser": openids,
                "msgtype": "text",
                "text": {"content": text},
                "clientmsgid": client_msg_id,
            },
            policy=SendPolicy.REPEATABLE,
            answered=frozenset({CLIENT_MSG_ID_EXISTS}),
        )
        msg_id = reply.get("msg_id")
        if not isinstance(msg_id, int):
            raise OutcomeUnknown(-1, "mass send reply has no msg_id")
        data_id = reply.get("msg_data_id")
        return MassAccepted(
            msg_id,
            data_id if isinstance(data_id, int) else None,
            repeated=int(reply.get("errcode", 0)) == CLIENT_MSG_ID_EXISTS,
        )

    async def mass_preview(self, text: str, *, wxname: str) -> None:
        """Send a mass message's text to one person, named by their WeChat id
        (微信号), to see it as followers will. It counts against no follower's quota."""
        await self._call(
            "/cgi-bin/message/mass/preview",
            {"towxname": wxname, "msgtype": "text", "text": {"content": text}},
            policy=SendPolicy.AT_MOST_ONCE,
        )

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu (``{"button": [...]}``, WeChat's format).

        Repeatable: the same menu set twice is the same menu.
        """
        await self._call("/cgi-bin/menu/create", menu, policy=SendPolicy.REPEATABLE)

    async def user_info(self, openid: str) -> dict[str, Any]:
        """WeChat's profile of a user; ``subscribe`` is 0 for someone who does not follow."""
        return await self._call(
            "/cgi-bin/user/info",
            None,
            params={"openid": openid, "lang": "zh_CN"},
            policy=SendPolicy.REPEATABLE,  # a read
        )

    async def create_qrcode(self, scene: str) -> tuple[str, str]:
        """A permanent QR code carrying ``scene`` (a string of 1 to 64 characters):
        WeChat's ``(ticket, url)``; the code's content is ``url``.

        Whoever scans it and follows gets a ``subscribe`` event with EventKey
        ``qrscene_<scene>``, a follower a ``SCAN`` event with EventKey ``<scene>``.
        Repeatable: WeChat answers the same scene with the same permanent code, so a
        second try after a lost answer creates nothing new. An account may hold
        100,000 permanent codes: callers keep the answer rather than ask again.
        """
        if not 1 <= len(scene) <= 64:
            raise ValueError(f"scene must be 1 to 64 characters, got {len(scene)}")
        reply = await self._call(
            "/cgi-bin/qrcode/create",
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}},
            policy=SendPolicy.REPEATABLE,
        )
        ticket, url = reply.get("ticket"), reply.get("url")
        if not isinstance(ticket, str) or not ticket or not isinstance(url, str) or not url:
            raise OutcomeUnknown(-1, "qrcode/create reply has no ticket/url")
        return ticket, url

    async def _call(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        policy: SendPolicy,
        params: Mapping[str, str] | None = None,
        answered: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """Call ``path`` with the access token: POST ``body`` as JSON, or GET when None.

        ``answered``: errcodes that are an answer rather than a refusal (45065 for a
        mass send: "already sent", with the first call's msg_id); their reply is
        returned as it is.

        ``policy`` has no default here: every call states whether it may be repeated
        after an ambiguous outcome. A rejected token is a clear refusal, so it is
        refreshed once and the call retried once whatever the policy; that retry does
        not use up one of the ``max_attempts`` kept for busy/unreachable WeChat.
        """
        stale: str | None = None
        while True:
            token = await self._token_for_call(path, stale)

            async def attempt(token: str = token) -> dict[str, Any]:
                query = {**(params or {}), "access_token": token}
                fresh = policy is SendPolicy.AT_MOST_ONCE
                reply = await self._request_once(path, body, query, fresh=fresh)
                errcode = int(reply.get("errcode", 0))
                if errcode and errcode not in TOKEN_ERRCODES | answered:
                    raise error_for(errcode, str(reply.get("errmsg", "")))
                return reply

            reply = await self._with_retries(path, attempt, policy=policy)
            errcode = int(reply.get("errcode", 0))
            if not errcode or errcode in answered:
                return reply
            # The token was rejected: invalid (40001/40014) or expired (42001).
            if stale is not None:
                raise InvalidCredential(errcode, str(reply.get("errmsg", "")))
            log.warning("WeChat rejected the access token (errcode %s): refreshing", errcode)
            stale = token

    async def _token_for_call(self, path: str, stale: str | None) -> str:
        """The token to call ``path`` with: the current one, or one other than ``stale``.

        Nothing of the call has gone out yet, so whatever keeps us from a token means
        the call was not made. A token fetch that timed out or got a 5xx is an
        ``OutcomeUnknown`` of the *fetch* (WeChat may have issued a token we never
        saw); passed on as it is, it made a message that never left look "sent, no
        clear answer", and callers recorded it as unknown and never sent it. So it,
        an unreachable or busy token endpoint, and a failing token store all become
        :class:`WeChatUnavailable`, which callers retry later. WeChat's refusals of
        the credentials (:class:`InvalidCredential`) or the quota (:class:`RateLimited`)
        keep their type: they already say "not sent", and more precisely.
        """
        try:
            if stale is None:
                return await self.access_token()
            return (await self._refresh(stale=stale)).token
        except (InvalidCredential, RateLimited):
            raise
        except WeChatError as exc:
            if not isinstance(exc, OutcomeUnknown | WeChatUnavailable):
                raise  # another refusal with an errcode: nothing was sent either
            detail = exc.errmsg.removeprefix(NOT_SENT)
        except Exception as exc:  # the token store's database, most likely
            # Only the type: the message of a failed statement on the token row may
            # quote its parameters, the token among them.
            detail = type(exc).__name__
        log.warning("WeChat %s not called: no access token (%s)", path, detail)
        raise WeChatUnavailable(-1, f"{NOT_SENT}no access token ({detail})") from None

    # --- HTTP, retries ---------------------------------------------------------------

    async def _with_retries(
        self, what: str, attempt: Callable[[], Awaitable[T]], *, policy: SendPolicy
    ) -> T:
        """Run ``attempt`` up to ``max_attempts`` times while it fails in a way that may
        be retried: WeChat did nothing, or (``REPEATABLE`` only) it may have."""
        for number in range(1, self._max_attempts + 1):
            try:
                return await attempt()
            except WeChatError as exc:
                WECHAT_ERRORS.labels(errcode=str(exc.errcode)).inc()
                retry = is_retryable(exc) or (
                    isinstance(exc, OutcomeUnknown) and policy is SendPolicy.REPEATABLE
                )
                if not retry or number == self._max_attempts:
                    raise
                delay = self._backoff(number)
                log.warning(
                    "WeChat %s failed (%s), attempt %d of %d; retrying in %.2fs",
                    what,
                    exc,
                    number,
                    self._max_attempts,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: clients that failed together do not retry together."""
        return backoff(attempt, first=self._backoff_base, cap=BACKOFF_CAP, jitter=0.5)

    async def _request_once(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str],
        *,
        fresh: bool = False,
    ) -> dict[str, Any]:
        """One HTTP request with the timeout. Transport trouble becomes
        :class:`WeChatUnavailable` when the request cannot have reached WeChat (no
        connection), else :class:`OutcomeUnknown`; their messages leave out the path,
        which callers name in their own context. ``fresh``: on a connection of its
        own (an at-most-once send, see :mod:`bot.wechat.transport`).

        The original exception is not chained: aiohttp may put the URL, and with it the
        access token, into its message, and a chained traceback would log it.
        """
        url = self._base_url + path
        options: dict[str, Any] = {"params": query}
        if body is not None:
            # WeChat wants UTF-8 text, not \\u escapes (menus showed escapes verbatim).
            options["data"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
            options["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        method = "GET" if body is None else "POST"
        try:
            async with http_request(
                self._http, method, url, total=self._timeout, fresh=fresh, **options
            ) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not may_have_arrived(exc):
                raise WeChatUnavailable(-1, f"{NOT_SENT}{describe(exc)}") from None
            raise OutcomeUnknown(-1, describe(exc)) from None
        return _decode(status, raw)


def _decode(status: int, raw: bytes) -> dict[str, Any]:
    """WeChat's JSON reply; it may come as text/plain, so the content type is not trusted.

    A 5xx or a reply that is not WeChat's JSON may follow a call WeChat carried out:
    :class:`OutcomeUnknown`. Another status is a refusal by whatever answered.
    """
    if status >= 500:
        raise OutcomeUnknown(-1, f"HTTP {status}")
    if status != 200:
        raise Refused(-1, f"refused: HTTP {status}")
    try:
        reply = json.loads(raw)
    except ValueError:
        raise OutcomeUnknown(-1, "reply is not JSON") from None
    if not isinstance(reply, dict):
        raise OutcomeUnknown(-1, "reply is not a JSON object")
    return reply
