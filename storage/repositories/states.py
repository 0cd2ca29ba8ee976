"""Conversation states: read for many residents at once, written one by one.

Plain functions of a ``Connection`` (see ``storage.batch``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import ConversationState

_TABLE: Table = ConversationState.__table__  # type: ignore[assignment]
_C = _TABLE.c

StateRow = tuple[str | None, dict[str, Any], dt.datetime | None]
"""state, data, expires_at"""


def load_many(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StateRow]:
    """States of (community_id, openid) pairs; pairs without one are absent."""
    rows = connection.execute(
        select(_C.community_id, _C.openid, _C.state, _C.data, _C.expires_at).where(
            tuple_(_C.community_id, _C.openid).in_(list(set(keys)))
        )
    )
    return {(c, o): (state, data or {}, expires) for c, o, state, data, expires in rows}


@functools.cache
def _save_statement(dialect: str) -> Any:
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=[_C.community_id, _C.openid],
        set_={
            "state": statement.excluded.state,
            "data": statement.excluded.data,
            "expires_at": statement.excluded.expires_at,
            "updated_at": statement.excluded.updated_at,
        },
    )


def save(
    connection: Connection,
    community_id: str,
    openid: str,
    state: str | None,
    data: dict[str, Any],
    expires_at: dt.datetime | None,
) -> None:
    connection.execute(
        _save_statement(connection.dialect.name),
        {
            "community_id": community_id,
            "openid": openid,
            "state": state,
            "data": data,
            "expires_at": expires_at,
            "updated_at": dt.datetime.now(dt.UTC),
        },
    )
