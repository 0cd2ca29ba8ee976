"""Residents as WeChat followers: created when first seen, their 48-hour window kept."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import Resident

_TABLE: Table = Resident.__table__  # type: ignore[assignment]


@functools.cache
def _touch_statement(dialect: str) -> Any:
    """Built once per dialect: building an upsert (its ``excluded``) is not cheap."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.community_id, _TABLE.c.openid],
        set_={"last_message_at": statement.excluded.last_message_at},
    )


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


def touch_many(
    connection: Connection, community_id: str, openids: Sequence[str], *, now: dt.datetime
) -> None:
    """Note that these residents just wrote to us (opening WeChat's 48-hour window for
    customer-service messages), creating residents seen for the first time."""
    unique = sorted(set(openids))
    if not unique:
        return
    connection.execute(  # executemany: one cached statement for any batch size
        _touch_statement(connection.dialect.name),
        [
            {
                "community_id": community_id,
                "openid": openid,
                "following": True,
                "tags": [],
                "last_message_at": now,
                "created_at": now,
            }
            for openid in unique
        ],
    )


async def set_following(
    session: AsyncSession, community_id: str, openid: str, following: bool, *, now: dt.datetime
) -> None:
    """Follow (subscribe event) or unfollow (unsubscribe event) the official account."""
    insert = _insert(session)
    statement = insert(Resident).values(
        community_id=community_id, openid=openid, following=following, tags=[], created_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Resident.community_id, Resident.openid],
            set_={"following": following},
        )
    )
