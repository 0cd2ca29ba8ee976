"""Residents: created when first seen (as WeChat followers, or by staff for a resident
without WeChat), their following and 48-hour window kept. Every resident row is
created here."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
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


async def find_resident(session: AsyncSession, community_id: str, openid: str) -> Resident | None:
    return await session.scalar(
        select(Resident).where(Resident.community_id == community_id, Resident.openid == openid)
    )


async def resident_for(session: AsyncSession, community_id: str, openid: str) -> Resident:
    """The resident behind an openid, created on first use."""
    row = await find_resident(session, community_id, openid)
    if row is not None:
        return row
    try:
        async with session.begin_nested():
            row = Resident(community_id=community_id, openid=openid, tags=[])
            session.add(row)
    except IntegrityError:  # created meanwhile by a concurrent message
        row = await find_resident(session, community_id, openid)
        assert row is not None
    return row


async def proxy_resident(
    session: AsyncSession, community_id: str, *, name: str, phone: str, building: str | None
) -> Resident:
    """A resident without WeChat (代办, ordered for by staff), known by phone; created on
    first use with the name and building given then."""
    resident = await session.scalar(
        select(Resident).where(
            Resident.community_id == community_id,
            Resident.openid.is_(None),
            Resident.phone == phone,
        )
    )
    if resident is None:
        resident = Resident(
            community_id=community_id,
            openid=None,
            name=name,
            phone=phone,
            building=building,
            tags=[],
        )
        session.add(resident)
        await session.flush()
    return resident


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
