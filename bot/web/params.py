"""Whole numbers from a request's path, query string or form, parsed in one place.

A number typed into a URL can be anything: huge, negative, not a number, empty. Left
to ``int()`` and the database it becomes a 500, and not the same one everywhere:
PostgreSQL refuses an ``integer`` parameter above 2^31-1 and SQLite one above 2^63-1.
Every handler takes its numbers through these functions instead:

* a path id that is not a plausible row id is a page that does not exist: 404;
* a query or form value out of its range or not a number is the sender's mistake:
  400. Two audiences read about it: the person on the page gets a short Chinese
  sentence with the field's ``label`` (页码, 人数), never the parameter's name; the
  operator's log names the parameter and the value, in English.

An empty query or form value counts as absent (a form's empty box), so the default
applies.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

log = logging.getLogger(__name__)

MAX_ID = 2**31 - 1
"""Primary keys are ``Integer`` columns: int4 on PostgreSQL."""
_DIGITS = re.compile(r"[0-9]{1,18}")
"""ASCII digits only (``int()`` would also take "٣", " 3", "+3" and "3_000")."""


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as an integer in ``[low, high]``; None when it is anything else."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def path_id(request: web.Request, name: str = "id") -> int:
    """The row id in the path's ``{name}`` part; 404 when it cannot be one."""
    value = whole_number(request.match_info.get(name, ""), 1, MAX_ID)
    if value is None:
        raise web.HTTPNotFound(text="没有找到您要的内容。")
    return value


def query_int(
    request: web.Request, name: str, *, label: str, default: int, low: int, high: int
) -> int:
    """The query parameter ``name`` in ``[low, high]``; ``default`` when absent or
    empty; 400 otherwise (see :func:`form_int`)."""
    return form_int(
        request.query.get(name, ""), name, label=label, default=default, low=low, high=high
    )


def form_int(text: str, name: str, *, label: str, default: int, low: int, high: int) -> int:
    """A posted (or query) value in ``[low, high]``; ``default`` when empty.

    Anything else is a 400 that calls the field by ``label``, how the person who sees
    the answer knows it (Chinese on a page); the log line names ``name`` and the
    value for the operator.
    """
    text = text.strip()
    if not text:
        return default
    value = whole_number(text, low, high)
    if value is None:
        log.info("refused %s=%r: not a whole number in [%d, %d]", name, text[:40], low, high)
        raise web.HTTPBadRequest(text=f"{label}请填写 {low} 到 {high} 之间的整数。")
    return value
