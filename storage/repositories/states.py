"""Conversation states: read for many residents at once, written one by one.

Plain functions of a ``Connection`` (see ``storage.batch``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import ConversationState

_TABLE: Table = ConversationState.__table__  # type: ignore[assignment]
_C = _TABLE.c

StateRow = tuple[str | None, dict[str, Any], dt.datetime | None, int]
"""state, data, expires_at, version"""


class StateConflict(Exception):
    """The state changed since it was read: this save would undo another one."""


def load_many(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StateRow]:
    """States of (community_id, openid) pairs; pairs without one are absent."""
    rows = connection.execute(
        select(_C.community_id, _C.openid, _C.state, _C.data, _C.expires_at, _C.version).where(
            tuple_(_C.community_id, _C.openid).in_(list(set(keys)))
        )
    )
    return {
        (c, o): (state, data or {}, expires, version)
        for c, o, state, data, expires, version in rows
    }


@functools.cache
def _insert_statement(dialect: str) -> Any:
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)
    return statement.on_conflict_do_nothing(index_elements=[_C.community_id, _C.openid])


def save(
    connection: Connection,
    community_id: str,
    openid: str,
    state: str | None,
    data: dict[str, Any],
    expires_at: dt.datetime | None,
    version: int | None,
) -> None:
    """Save a state read at ``version`` (None: there was no row), compare-and-set;
    ``StateConflict`` when another save came first."""
    values = {
        "state": state,
        "data": data,
        "expires_at": expires_at,
        "updated_at": dt.datetime.now(dt.UTC),
    }
    if version is None:
        result = connection.execute(
            _insert_statement(connection.dialect.name),
            {"community_id": community_id, "openid": openid, "version": 1, **values},
        )
    else:
        result = connection.execute(
            update(_TABLE)
            .where(_C.community_id == community_id, _C.openid == openid, _C.version == version)
            .values(version=version + 1, **values)
        )
    if result.rowcount != 1:
        raise StateConflict(f"{community_id}/{openid}: saved by another message meanwhile")
