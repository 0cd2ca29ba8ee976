"""Typed WeChat API errors, so callers can react to what WeChat said rather than parse text.

WeChat answers almost every failure with HTTP 200 and a JSON ``errcode``. The few
errcodes a caller can act on get their own class: a closed 48-hour window can fall back
to a template message, a non-follower can be marked unsubscribed, a quota or rate limit
can be reported to staff. Everything else is a plain :class:`WeChatError`.
"""

from __future__ import annotations


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
    """45009: the API rate or daily quota is exhausted, still so after every retry."""


class InvalidCredential(WeChatError):
    """The app's credentials do not work.

    Either the access token was rejected again right after a forced refresh
    (40001/40014/42001), or the token endpoint refused the AppID/AppSecret
    (40013/40125/41002/41004). Retrying will not help; an operator must look.
    """


class WeChatUnavailable(WeChatError):
    """WeChat could not be reached or kept failing (network, timeout, -1 "system busy")."""


TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
"""The access token was rejected (invalid, not latest, or expired): refresh once."""

CREDENTIAL_ERRCODES = frozenset({40013, 40125, 41002, 41004})
"""The token endpoint refused the AppID or AppSecret themselves."""

_BY_ERRCODE: dict[int, type[WeChatError]] = {
    45015: WindowClosed,
    45047: QuotaExceeded,
    43004: NotFollowing,
    45009: RateLimited,
    -1: WeChatUnavailable,
    **dict.fromkeys(TOKEN_ERRCODES | CREDENTIAL_ERRCODES, InvalidCredential),
}


def error_for(errcode: int, errmsg: str) -> WeChatError:
    """The typed error for a WeChat errcode (plain :class:`WeChatError` when untyped)."""
    return _BY_ERRCODE.get(errcode, WeChatError)(errcode, errmsg)


def is_retryable(error: WeChatError) -> bool:
    """Worth another attempt after a pause: WeChat was busy, rate-limited or unreachable."""
    return isinstance(error, RateLimited | WeChatUnavailable)
