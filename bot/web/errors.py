"""Every page that fails says so in short Chinese: refusals (4xx), a busy database
(503) and the unexpected (500), never aiohttp's English "404: Not Found".

One middleware, :func:`error_pages`, around every handler, and one template,
``message.html``:

* A handler refuses with ``web.HTTPException`` (400 a wrong value, 403 another
  role's page, 404 nothing there, 409 done already), and so does aiohttp itself (an
  unknown path, a method the route does not take, a body over the size limit). A
  refusal whose text is already written for people (Chinese) keeps it; any other
  text (aiohttp's, a library's) is replaced with a Chinese sentence for its status,
  and the English original goes to the log for the operator.
* Work that cannot get the database in time (SQLite's write lock still held when
  the busy timeout ends, no free pooled connection within ``DB_POOL_TIMEOUT``, a
  lost connection, a file that cannot be written) fails with an error that
  ``storage.errors.database_unavailable`` recognises. Such a failure says nothing
  about the request, and trying again shortly will likely succeed, so the answer is
  503 with ``Retry-After`` rather than a 500 that reads as a bug.
* Anything else is a bug: logged with its traceback, answered 500 with an apology.

Browsers (``Accept: text/html``) get a page with a way back; anything else gets the
same sentence as plain text (JSON for the 503, which scripts poll). ``/wechat``
answers its own errors before this sees anything (``bot.web.wechat``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import keys
from bot.web.auth import current
from storage.errors import database_unavailable

log = logging.getLogger(__name__)

RETRY_AFTER = 5
"""Seconds a client is asked to wait: a writer normally holds SQLite's lock for
milliseconds and a pooled connection for well under a second, so by then the
database that was busy most likely is not."""
BUSY = "系统有点忙，请稍后再试。"
BROKEN = "抱歉，系统出了点问题，请稍后再试。"
REFUSALS = {
    400: "填写的内容不对，请检查后再试。",
    401: "请先登录。",
    403: "您没有权限访问这个页面。",
    404: "没有找到您要的页面。",
    405: "这个页面不能这样打开。",
    409: "这件事刚才已经处理过了，请刷新页面看看。",
    413: "提交的内容太多了，请删减一些再试。",
    414: "网址太长了，请检查后再试。",
    429: "操作太频繁了，请稍后再试。",
}
"""What a refusal says when its own text is not written for people."""
OTHER_REFUSAL = "没有办成，请检查后再试。"
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def error_pages(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as refused:
        if refused.status < 400:
            raise  # redirects
        return refusal_response(request, refused)
    except Exception as exc:
        if not database_unavailable(exc):
            log.exception("%s %s failed", request.method, request.path)
            return message_response(request, 500, BROKEN)
        # The driver's words, without the statement and its parameters.
        reason = next(iter(str(getattr(exc, "orig", None) or exc).splitlines()), "")
        log.warning(
            "%s %s answered 503: database unavailable (%s: %s)",
            request.method,
            request.path,
            type(exc).__name__,
            reason,
        )
        return busy_response(request)
    return response


def refusal_response(request: web.Request, refused: web.HTTPException) -> web.Response:
    """``refused`` in words for people: its own if Chinese, else its status's."""
    text = refused.text or ""
    if not _CHINESE.search(text):
        log.info("%s %s answered %d: %s", request.method, request.path, refused.status, text[:200])
        text = REFUSALS.get(refused.status, OTHER_REFUSAL)
    response = message_response(request, refused.status, text)
    for name in _KEPT_HEADERS:
        if name in refused.headers:
            response.headers[name] = refused.headers[name]
    return response


def busy_response(request: web.Request) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER)}
    if _wants_html(request):
        response = message_response(request, 503, BUSY, hint="过一会儿刷新页面就好，给您添麻烦了。")
        response.headers.update(headers)
        return response
    body = {"error": "database unavailable", "message": BUSY, "retry_after": RETRY_AFTER}
    return web.json_response(body, status=503, headers=headers)


def message_response(
    request: web.Request, status: int, message: str, *, hint: str | None = None
) -> web.Response:
    """``message`` with ``status``: a page for a browser, plain text otherwise."""
    if not _wants_html(request):
        return web.Response(status=status, text=message)
    tenants = request.app.get(keys.TENANTS)
    user = current(request)
    if user is None:
        back = ("/", "回到首页")
    elif user.role == "unit":
        back = ("/portal", "回到本单位订单")
    else:
        back = ("/console", "回到工作台")
    context = {
        "community": tenants.default.name if tenants else "",
        "message": message,
        "hint": hint,
        "back": back,
    }
    return aiohttp_jinja2.render_template("message.html", request, context, status=status)


def _wants_html(request: web.Request) -> bool:
    """Browsers (and forms they post) accept text/html; scripts and fetch() calls do not
    ask for it."""
    return "text/html" in request.headers.get("Accept", "")
