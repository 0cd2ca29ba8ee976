"""Typed WeChat API errors, so callers can react to what WeChat said rather than parse text.

WeChat answers almost every failure with HTTP 200 and a JSON ``errcode``. The few
errcodes a caller can act on get their own class: a closed 48-hour window can fall back
to a template message, a non-follower can be marked unsubscribed, a quota or rate limit
can be reported to staff. Everything else is a plain :class:`WeChatError`.

Before any of that, a failed call is one of two kinds, and a sender must know which:

- **not done**: WeChat answered and refused (any errcode, among them -1 "系统繁忙，此时请
  开发者稍候再试" and 45009/45011 rate limits, which WeChat's global return-code table
  documents as "try again later"), or the request never left this machine: the
  connection was refused or not made within the connect timeout, or there was no
  access token to send it with (the token endpoint was unreachable, busy, slow or
  answered 5xx). Trying again cannot make a second copy.
- **outcome unknown** (:class:`OutcomeUnknown`): the request went out and no usable
  answer came back (a timeout after sending, HTTP 5xx, the connection dropped
  mid-request, a reply that is not WeChat's JSON). WeChat may have acted on it. WeChat
  has no idempotency key, so sending a message again may deliver it twice.

:func:`may_have_arrived` is the one place that tells the two apart for an exception,
for the API client and for the outbox's other HTTP channels alike. It can only be right
about requests made through :mod:`bot.wechat.transport`: with aiohttp's defaults a
connection that never opened can end in a plain ``TimeoutError``, and a kept-alive
connection closed by the server before it read the request in the same errors as one
dropped after, and both would look "may have arrived".
"""

from __future__ import annotations

import aiohttp


class WeChatError(Exception):
    """WeChat refused a call; ``errcode``/``errmsg`` are WeChat's own."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WindowClosed(WeChatError):
    """45015: the resident's 48-hour customer-service window has passed.

    Customer-service messages are only allowed within 48 hours of the resident's last
    message; a template message is the usual fallback.
    """


class QuotaExceeded(WeChatError):
    """45047: too many customer-service messages to this resident without a reply."""


class NotFollowing(WeChatError):
    """43004: the resident does not follow (has unsubscribed from) the account."""


class RateLimited(WeChatError):
    """45009 (daily quota) or 45011 (per-minute quota): exhausted, still so after every retry."""


class RepeatTooSoon(WeChatError):
    """45066: a mass send repeated with the same clientmsgid within a minute of the
    last call. Nothing new was done; try again after a minute."""


class NoMassQuota(WeChatError):
    """45028: the account has no mass-send quota left (a subscription account sends
    one mass message a day). Nothing was sent; the batch waits for the next day."""


class InvalidCredential(WeChatError):
    """The app's credentials do not work.

    Either the access token was rejected again right after a forced refresh
    (40001/40014/42001), or the token endpoint refused the AppID/AppSecret
    (40013/40125/41002/41004). Retrying will not help; an operator must look.
    """


class WeChatUnavailable(WeChatError):
    """WeChat did not take the call: it answered -1 (system busy), could not be
    reached at all (the connection was refused or not made within the connect
    timeout), or the call was never made for want of an access token (its message
    then begins "not sent: no access token").

    Nothing was done, so another attempt later is safe, for a message too.
    """


class Refused(WeChatUnavailable):
    """Whatever answered (a gateway, a proxy, a firewall in front of WeChat) refused
    the call with an HTTP 4xx instead of WeChat's JSON. Nothing was done, as for
    any :class:`WeChatUnavailable`; but unlike a busy or unreachable WeChat it says
    nothing about being over soon, so a sender gives such a delivery a limited
    number of tries."""


class OutcomeUnknown(WeChatError):
    """The request went out but no clear answer came back: WeChat may have acted on it.

    A timeout after the request was sent, an HTTP 5xx, a connection dropped
    mid-request, a reply that is not WeChat's JSON. Not a subclass of
    :class:`WeChatUnavailable` on purpose: code that retries "WeChat was unavailable"
    must not resend a message that may have arrived. ``errcode`` is -1 (WeChat gave
    none).
    """


TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
"""The access token was rejected (invalid, not latest, or expired): refresh once."""

CREDENTIAL_ERRCODES = frozenset({40013, 40125, 41002, 41004})
"""The token endpoint refused the AppID or AppSecret themselves."""

_BY_ERRCODE: dict[int, type[WeChatError]] = {
    45015: WindowClosed,
    45047: QuotaExceeded,
    43004: NotFollowing,
    45009: RateLimited,
    45011: RateLimited,
    45066: RepeatTooSoon,
    45028: NoMassQuota,
    -1: WeChatUnavailable,
    **dict.fromkeys(TOKEN_ERRCODES | CREDENTIAL_ERRCODES, InvalidCredential),
}


def error_for(errcode: int, errmsg: str) -> WeChatError:
    """The typed error for a WeChat errcode (plain :class:`WeChatError` when untyped)."""
    return _BY_ERRCODE.get(errcode, WeChatError)(errcode, errmsg)


def is_retryable(error: WeChatError) -> bool:
    """Worth another attempt after a pause, for any call: WeChat was busy,
    rate-limited or unreachable, and did nothing. (:class:`OutcomeUnknown` is not:
    whether a call may be repeated after it is the caller's decision.)"""
    return isinstance(error, RateLimited | WeChatUnavailable)


def may_have_arrived(error: BaseException) -> bool:
    """Whether a failed HTTP request may still have been acted on by the other end.

    False when the peer answered with a refusal, or when no connection was ever made
    (aiohttp's connector errors, including ``ConnectionTimeoutError``, which aiohttp
    raises only when the connect phase has a limit of its own: see
    :func:`bot.wechat.transport.timeout`): nothing was sent. True for everything that
    can happen once a connection is open: a timeout waiting for the answer, a reset or
    closed connection, a broken reply, HTTP 5xx (a gateway may have passed the request
    on). Other HTTP statuses are refusals. A reset or close on a kept-alive connection
    may come before the server read anything, but cannot be told from one after: an
    at-most-once send therefore uses a new connection
    (:func:`bot.wechat.transport.request`), on which it does mean "may have arrived".
    """
    if isinstance(error, OutcomeUnknown):
        return True
    if isinstance(error, WeChatError):
        return False  # WeChat answered with an errcode, or we never reached it
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status >= 500
    never_sent = aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | aiohttp.InvalidURL
    if isinstance(error, never_sent):
        return False  # the connection was never made: nothing was sent
    return isinstance(error, TimeoutError | aiohttp.ClientError | OSError)


def describe(error: BaseException) -> str:
    """A failed request in a few words, for logs and for staff.

    An aiohttp error's own message is left out: it may hold the URL, and with it an
    access token or a WeCom robot's key.
    """
    if isinstance(error, WeChatError):
        return str(error)
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status}"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return "no connection within the timeout"
    if isinstance(error, TimeoutError):
        return "no answer within the timeout"
    if isinstance(error, aiohttp.ClientError):
        return type(error).__name__
    return f"{type(error).__name__}: {error}"
