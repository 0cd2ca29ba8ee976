"""Logging in, sessions, roles and CSRF for the web side.

* Passwords are argon2id hashes; hashing and checking run in a thread (they are
  deliberately slow) so the event loop keeps serving.
* The session cookie (``om_session``) is a random token; the database keeps its
  hash. HttpOnly, SameSite=Lax, and Secure when ``PUBLIC_URL`` is https.
* Every form carries the session's CSRF token; every POST is checked against it.
* ``require(request, *roles)`` is called at the top of every staff or unit handler.

Password guessing, without letting a guesser lock the real user out
---------------------------------------------------------------------

A hard lock after five failures lets anyone lock any account out, and behind the
reverse proxy every client has the proxy's address, so one guesser anywhere kept
everyone out. Logins are slowed instead, in a way a guesser cannot turn on others
(``LoginLimiter``, ``KnownDevices``):

* **Back-off per (account, client)**, never a lock. The client is the browser's
  known-device id (below), else its address (``X-Forwarded-For`` is believed only
  from ``TRUSTED_PROXIES``; bot/web/clients.py). Its first 5 failures cost nothing;
  then each try must wait 15 s after the previous failure, doubling with each
  further failure up to 15 minutes. Failures are forgotten after 24 hours, and a
  successful login forgets its own client's. A user who mistyped waits seconds; a
  guesser gets about a hundred tries a day per account and address.
* **Known devices.** A successful login gives the browser a long-lived cookie for
  that account (``om_device_…``: a random device id and its issue time, signed with
  HMAC-SHA256 under a key kept in the database, so every process accepts it; 180
  days, renewed at each login, sent to ``/login`` only). A browser holding one is a
  client of its own: failures from elsewhere, the same proxy address included, do
  not slow it, so the real user gets in while someone guesses.
* **A cap per account** over clients that are not known devices: 100 failures in
  24 hours. Many addresses (a botnet, rotating proxies) cannot guess without bound;
  when the cap is reached only the account's known devices may log in until old
  failures age out. A guesser can keep a *new* browser out for a while, never one
  the user logged in on before.
* Failures are rows in the database, so every process counts the same ones. Each
  attempt is written before the password is checked and judged after that write is
  committed: of guesses arriving at once, in one process or several, no more get a
  password check than the rules allow. A refused attempt is not a failure: its row
  is removed and the wait does not grow.
* Not covered here: one address trying one password on many account names (each
  account is judged on its own; the argon2 check bounds the rate).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.clock import Clock
from bot.tenants import Tenant
from bot.web.clients import client_address
from storage.models import LoginFailure
from storage.repositories import instance
from storage.repositories import users as repo
from storage.repositories.users import SignedIn

COOKIE = "om_session"
SIGNED_IN = web.RequestKey("user", SignedIn)
"""Set on requests from a signed-in browser only."""
LIFETIME = dt.timedelta(hours=12)

_hasher = PasswordHasher()
routes = web.RouteTableDef()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown username's password is checked against. Made on first use, not
    at import: hashing is deliberately slow (0.15-0.4 s), and every process (each CLI
    command, each worker) would pay for it before doing anything."""
    return _hasher.hash("not a password anyone has")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def check_password(stored: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


DEVICE = "device:"
"""Prefix of a known device's client key (an address never starts with it)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait: float = 0.0
    """Seconds before this client may try again (when refused by its back-off)."""
    account_capped: bool = False
    """Refused because the account's cap for unknown clients is reached."""


class LoginLimiter:
    """Back-off per (account, client) and a cap per account; see the module docstring.

    ``client`` is an address, or ``device:<id>`` for a known device (exempt from the
    account's cap). Failures are rows in the database, shared by every process.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        free: int = 5,
        first_delay: float = 15.0,
        max_delay: float = 900.0,
        window: float = 86400.0,
        account_cap: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.free = free
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.window = dt.timedelta(seconds=window)
        self.account_cap = account_cap

    def delay(self, failures: int) -> float:
        """Seconds a client with ``failures`` failures waits after its last one."""
        if failures < self.free:
            return 0.0
        doublings = min(failures - self.free, 30)
        return min(self.first_delay * math.pow(2, doublings), self.max_delay)

    async def attempt(self, account: str, client: str) -> Verdict:
        """Count this attempt, then say whether it may go on.

        The attempt is written *before* the password is checked and judged after it
        is committed, against every other attempt then written: of any number of
        guesses arriving at once, in one process or several, each one that passes
        sees all those that passed before it. A wrong password leaves its row as the
        failure; a right one clears the client's rows (``succeeded``).
        """
        now = self._clock.now()
        account, client = account[:140], client[:64]
        since = now - self.window
        async with self._sessionmaker.begin() as session:
            row = LoginFailure(account=account, remote=client, at=now)
            session.add(row)
            # Old failures count for nothing: made-up names must not fill the table.
            await session.execute(delete(LoginFailure).where(LoginFailure.at < since))
        async with self._sessionmaker.begin() as session:
            failures, last = (
                await session.execute(
                    select(func.count(LoginFailure.id), func.max(LoginFailure.at)).where(
                        LoginFailure.account == account,
                        LoginFailure.remote == client,
                        LoginFailure.at >= since,
                        LoginFailure.id != row.id,
                    )
                )
            ).one()
            wait = 0.0
            if failures >= self.free and last is not None:
                due = last + dt.timedelta(seconds=self.delay(failures))
                wait = (due - now).total_seconds()
            capped = False
            if not client.startswith(DEVICE):
                shared = await session.scalar(
                    select(func.count(LoginFailure.id)).where(
                        LoginFailure.account == account,
                        ~LoginFailure.remote.startswith(DEVICE, autoescape=True),
                        LoginFailure.at >= since,
                    )
                )
                capped = int(shared or 0) > self.account_cap
            if wait <= 0 and not capped:
                return Verdict(True)
            # Refused without a check: not a failure of its own, the wait stays put.
            await session.execute(delete(LoginFailure).where(LoginFailure.id == row.id))
        return Verdict(False, wait=max(wait, 0.0), account_capped=capped)

    async def succeeded(self, account: str, client: str) -> None:
        """The right password: this client's failures are forgotten (others' stay)."""
        async with self._sessionmaker.begin() as session:
            await session.execute(
                delete(LoginFailure).where(
                    LoginFailure.account == account[:140], LoginFailure.remote == client[:64]
                )
            )


class KnownDevices:
    """Browsers that logged in to an account before, by a signed cookie per account.

    The cookie holds a random device id and its issue time, signed with a key every
    process reads from the database (made once, on first use). Its holder is a
    login client of its own (``device:<id>``), so others' failures never slow it.
    """

    PREFIX = "om_device_"
    LIFETIME = dt.timedelta(days=180)
    SETTING = "web_device_key"

    def __init__(self) -> None:
        self._key: bytes | None = None

    async def _signing_key(self, app: web.Application) -> bytes:
        if self._key is None:
            async with app[keys.SESSIONMAKER].begin() as session:
                value = await instance.get_or_create(
                    session, self.SETTING, lambda: secrets.token_urlsafe(32)
                )
            self._key = value.encode()
        return self._key

    @classmethod
    def cookie_name(cls, account: str) -> str:
        """One cookie per account (a shared office computer may know several); the
        name does not show the account."""
        return cls.PREFIX + hashlib.sha256(account.encode()).hexdigest()[:16]

    @staticmethod
    def _mac(key: bytes, account: str, device: str, issued: int) -> str:
        message = f"{account}\n{device}\n{issued}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    async def recognise(self, request: web.Request, account: str) -> str | None:
        """The device id when the request carries a valid, unexpired cookie for
        ``account``; None otherwise."""
        value = request.cookies.get(self.cookie_name(account), "")
        device, _, rest = value.partition(".")
        issued_text, _, mac = rest.partition(".")
        if not (device and mac and issued_text.isascii() and issued_text.isdigit()):
            return None
        if len(device) > 40 or len(issued_text) > 12:
            return None
        issued = int(issued_text)
        now = request.app[keys.CLOCK].now().timestamp()
        # (A few minutes ahead: another process's clock may run a little fast.)
        if not -300 <= now - issued <= self.LIFETIME.total_seconds():
            return None
        key = await self._signing_key(request.app)
        expected = self._mac(key, account, device, issued)
        # Bytes, not str: compare_digest refuses a str with non-ASCII characters
        # (a forged cookie would have been a 500).
        return device if hmac.compare_digest(expected.encode(), mac.encode()) else None

    async def remember(
        self,
        request: web.Request,
        response: web.StreamResponse,
        account: str,
        device: str | None,
    ) -> None:
        """Set (or renew) the cookie after a successful login."""
        device = device or secrets.token_urlsafe(16)
        issued = int(request.app[keys.CLOCK].now().timestamp())
        key = await self._signing_key(request.app)
        response.set_cookie(
            self.cookie_name(account),
            f"{device}.{issued}.{self._mac(key, account, device, issued)}",
            httponly=True,
            samesite="Strict",
            secure=_secure(request),
            max_age=int(self.LIFETIME.total_seconds()),
            path="/login",
        )


DEVICES = web.AppKey("known_devices", KnownDevices)


def _secure(request: web.Request) -> bool:
    return (request.app[keys.SETTINGS].public_url or "").startswith("https://")


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app[DEVICES] = KnownDevices()
    app.middlewares.append(session_middleware)


@web.middleware
async def session_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Loads the signed-in user (if any) before the handler. (Forms check their CSRF
    token in ``checked_form``; the login form has none: there is no session yet, and
    the cookie is SameSite=Lax.)"""
    token = request.cookies.get(COOKIE)
    if token and not request.path.startswith(("/wechat", "/healthz")):
        async with request.app[keys.READER]() as session:
            user = await repo.signed_in(session, token)
        if user is not None:
            request[SIGNED_IN] = user
    response: web.StreamResponse = await handler(request)
    return response


def current(request: web.Request) -> SignedIn | None:
    return request.get(SIGNED_IN)


def require(request: web.Request, *roles: str) -> SignedIn:
    """The signed-in user if their role is one of ``roles``; else 302 to login or 403."""
    user = current(request)
    if user is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    if user.role not in roles:
        raise web.HTTPForbidden(text="您没有权限访问这个页面。")
    return user


async def checked_form(request: web.Request, user: SignedIn) -> dict[str, str]:
    """The posted form, after checking its CSRF token (403 otherwise)."""
    form = await request.post()
    check_csrf(user, str(form.get("csrf", "")))
    return {k: str(v) for k, v in form.items()}


def check_csrf(user: SignedIn, given: str) -> None:
    """403 unless ``given`` is the session's CSRF token: for a form read otherwise
    than with :func:`checked_form` (a large upload streamed with ``multipart()``)."""
    if not hmac.compare_digest(given.encode(), user.csrf.encode()):
        raise web.HTTPForbidden(text="表单已过期，请刷新页面后再试。")


@routes.get("/login")
@aiohttp_jinja2.template("login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    tenants = request.app[keys.TENANTS]
    tenant = tenants.get(request.query.get("community")) or tenants.default
    return _login_context(request, tenant, _safe_next(request.query.get("next")), None)


def _login_context(
    request: web.Request, tenant: Tenant, target: str, error: str | None
) -> dict[str, Any]:
    tenants = request.app[keys.TENANTS]
    return {
        "community": tenant.name if not tenants.several else "登录",
        "communities": [(t.id, t.name) for t in tenants],
        "chosen": tenant.id,
        "next": target,
        "error": error,
    }


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    app = request.app
    tenants = app[keys.TENANTS]
    tenant = tenants.get(str(form.get("community", ""))) or tenants.default
    community_id = tenant.id
    account = f"{community_id}:{username}"
    device = await app[DEVICES].recognise(request, account)
    client = DEVICE + device if device else client_address(request)
    limiter = LoginLimiter(app[keys.SESSIONMAKER], app[keys.CLOCK])

    def again(error: str, status: int) -> web.Response:
        context = _login_context(request, tenant, target, error)
        return aiohttp_jinja2.render_template("login.html", request, context, status=status)

    verdict = await limiter.attempt(account, client)
    if not verdict.allowed:
        return _refused(verdict, again)
    async with app[keys.READER]() as session:
        user = await repo.find_user(session, community_id, username)
    # An unknown name costs a hash check too: the answer's timing must not tell
    # which usernames exist.
    stored = user.password_hash if user is not None else await asyncio.to_thread(_dummy_hash)
    if not await check_password(stored, password) or user is None:
        return again("用户名或密码不对。", 401)
    await limiter.succeeded(account, client)
    async with app[keys.SESSIONMAKER].begin() as session:
        token = await repo.open_session(session, user, lifetime=LIFETIME)
        await repo.audit(session, community_id, user.username, "login", user.role)
    home = target or ("/portal" if user.role == "unit" else "/console")
    response = web.HTTPFound(home)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        max_age=int(LIFETIME.total_seconds()),
        path="/",
    )
    await app[DEVICES].remember(request, response, account, device)
    raise response


def _refused(verdict: Verdict, again: Callable[[str, int], web.Response]) -> web.Response:
    if verdict.account_capped:
        return again(
            "这个账号最近登录失败的次数太多。为了安全，暂时只能在您以前登录过的设备上登录，"
            "请稍后再试，或联系管理员。",
            429,
        )
    seconds = max(1, math.ceil(verdict.wait))
    later = f"{seconds}秒" if seconds < 60 else f"{math.ceil(seconds / 60)}分钟"
    response = again(f"尝试次数太多，请{later}后再试。", 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    user = current(request)
    if user is not None:
        await checked_form(request, user)
        token = request.cookies.get(COOKIE, "")
        async with request.app[keys.SESSIONMAKER].begin() as session:
            await repo.close_session(session, token)
    response = web.HTTPFound("/")
    response.del_cookie(COOKIE, path="/")
    raise response


def _safe_next(target: str | None) -> str:
    """Only paths on this site: no open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return ""
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return ""  # browsers read "/\\host" and "/\t/host" as another site
    return target
