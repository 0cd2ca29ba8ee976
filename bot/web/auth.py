"""Logging in, sessions, roles and CSRF for the web side.

* Passwords are argon2id hashes; hashing and checking run in a thread (they are
  deliberately slow) so the event loop keeps serving.
* The session cookie (``om_session``) is a random token; the database keeps its
  hash. HttpOnly, SameSite=Lax, and Secure when ``PUBLIC_URL`` is https.
* Every form carries the session's CSRF token; every POST is checked against it.
* Login is rate-limited per username and address: after 5 failures in 15 minutes
  the next attempts are refused until the window passes. Failures are counted in
  the database, so every process behind the port counts the same ones.
* ``require(request, *roles)`` is called at the top of every staff or unit handler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
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
from storage.models import LoginFailure
from storage.repositories import users as repo
from storage.repositories.users import SignedIn

COOKIE = "om_session"
SIGNED_IN = web.RequestKey("user", SignedIn)
"""Set on requests from a signed-in browser only."""
LIFETIME = dt.timedelta(hours=12)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")
routes = web.RouteTableDef()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def check_password(stored: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


class LoginLimiter:
    """At most ``attempts`` failures per (account, address) in ``window`` seconds.

    Failures are rows in the database, so every process counts the same ones: with
    N processes behind one port an attacker still gets ``attempts`` tries, not N
    times as many.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        attempts: int = 5,
        window: float = 900.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.attempts = attempts
        self.window = dt.timedelta(seconds=window)

    async def attempt(self, account: str, remote: str) -> bool:
        """Count this attempt, then say whether it may go on.

        The attempt is written *before* the password is checked and counted after it
        is committed: of any number of guesses arriving at once, in one process or
        several, at most ``attempts`` see a count within the limit. A wrong password
        leaves its row as the failure; a right one clears them all (``succeeded``).
        """
        now = self._clock.now()
        account, remote = account[:140], remote[:64]
        async with self._sessionmaker.begin() as session:
            row = LoginFailure(account=account, remote=remote, at=now)
            session.add(row)
            # Old failures count for nothing: made-up names must not fill the table.
            await session.execute(delete(LoginFailure).where(LoginFailure.at < now - self.window))
        async with self._sessionmaker.begin() as session:
            counted = await session.scalar(
                select(func.count(LoginFailure.id)).where(
                    LoginFailure.account == account,
                    LoginFailure.remote == remote,
                    LoginFailure.at > now - self.window,
                )
            )
            if int(counted or 0) <= self.attempts:
                return True
            # Refused without a check: not a failure of its own, the window stays put.
            await session.execute(delete(LoginFailure).where(LoginFailure.id == row.id))
        return False

    async def succeeded(self, account: str, remote: str) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(
                delete(LoginFailure).where(
                    LoginFailure.account == account, LoginFailure.remote == remote
                )
            )


def setup(app: web.Application) -> None:
    app.add_routes(routes)
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
    given = str(form.get("csrf", ""))
    if not hmac.compare_digest(given.encode(), user.csrf.encode()):
        raise web.HTTPForbidden(text="表单已过期，请刷新页面后再试。")
    return {k: str(v) for k, v in form.items()}


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
    key = (f"{community_id}:{username}", request.remote or "?")  # (account, address)
    limiter = LoginLimiter(app[keys.SESSIONMAKER], app[keys.CLOCK])

    def again(error: str, status: int) -> web.Response:
        context = _login_context(request, tenant, target, error)
        return aiohttp_jinja2.render_template("login.html", request, context, status=status)

    if not await limiter.attempt(*key):
        return again("尝试次数太多，请15分钟后再试。", 429)
    async with app[keys.SESSIONMAKER]() as session:
        user = await repo.find_user(session, community_id, username)
    # An unknown name costs a hash check too: the answer's timing must not tell
    # which usernames exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not await check_password(stored, password) or user is None:
        return again("用户名或密码不对。", 401)
    await limiter.succeeded(*key)
    async with app[keys.SESSIONMAKER].begin() as session:
        token = await repo.open_session(session, user, lifetime=LIFETIME)
        await repo.audit(session, community_id, user.username, "login", user.role)
    home = target or ("/portal" if user.role == "unit" else "/console")
    response = web.HTTPFound(home)
    public = app[keys.SETTINGS].public_url or ""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=public.startswith("https://"),
        max_age=int(LIFETIME.total_seconds()),
        path="/",
    )
    raise response


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
