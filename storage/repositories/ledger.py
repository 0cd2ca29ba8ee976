"""The processed-message ledger: which inbound messages were taken, and their replies.

Each statement here works on a whole batch of messages (see ``bot.batching``), and
the claim is one ``INSERT … ON CONFLICT DO NOTHING RETURNING``: the database's
unique key, not a read-then-write, decides which attempt owns a message, so two
processes receiving the same retry cannot both take it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import ProcessedMessage

_TABLE: Table = ProcessedMessage.__table__  # type: ignore[assignment]
_FINISH = (
    update(_TABLE)
    .where(_TABLE.c.community_id == bindparam("c"), _TABLE.c.key == bindparam("k"))
    .values(done=True, reply=bindparam("r"))
)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.key)


@dataclass(frozen=True)
class LedgerEntry:
    """What is known of a message someone else already claimed."""

    done: bool
    deferred: bool
    reply: str | None
    received_at: dt.datetime


async def claim_many(
    session: AsyncSession,
    community_id: str,
    keys: Sequence[str],
    *,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> dict[str, LedgerEntry | None]:
    """Claim each key; None for the keys claimed now, the existing entry for the others."""
    unique = list(dict.fromkeys(keys))
    # One statement whatever the batch size (executemany): compiled once and cached,
    # where a VALUES list of varying length would be compiled for every batch.
    connection = await session.connection()
    inserted = await connection.execute(
        _claim_statement(dialect_name(session)),
        [
            {
                "community_id": community_id,
                "key": key,
                "received_at": now,
                "expires_at": expires_at,
                "done": False,
                "deferred": False,
            }
            for key in unique
        ],
    )
    claimed = set(inserted.scalars())
    result: dict[str, LedgerEntry | None] = dict.fromkeys(claimed)
    others = [key for key in unique if key not in claimed]
    if others:
        rows = await session.execute(
            select(
                ProcessedMessage.key,
                ProcessedMessage.done,
                ProcessedMessage.deferred,
                ProcessedMessage.reply,
                ProcessedMessage.received_at,
            ).where(ProcessedMessage.community_id == community_id, ProcessedMessage.key.in_(others))
        )
        for key, done, deferred, reply, received_at in rows:
            result[key] = LedgerEntry(done, deferred, reply, received_at)
    return result


async def entry(session: AsyncSession, community_id: str, key: str) -> LedgerEntry | None:
    row = await session.get(ProcessedMessage, (community_id, key))
    if row is None:
        return None
    return LedgerEntry(row.done, row.deferred, row.reply, row.received_at)


async def take_over(
    session: AsyncSession,
    community_id: str,
    key: str,
    *,
    now: dt.datetime,
    stale_before: dt.datetime,
) -> bool:
    """Claim a message whose first attempt died unfinished (it neither replied nor
    deferred before ``stale_before``). True when this caller now owns it."""
    result = await session.execute(
        update(ProcessedMessage)
        .where(
            ProcessedMessage.community_id == community_id,
            ProcessedMessage.key == key,
            ProcessedMessage.done.is_(False),
            ProcessedMessage.deferred.is_(False),
            ProcessedMessage.received_at < stale_before,
        )
        .values(received_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish_many(
    session: AsyncSession, community_id: str, replies: Sequence[tuple[str, str | None]]
) -> None:
    """Record the replies of finished messages (key, reply or None for "success").

    One executemany by primary key, however many messages finished together.
    """
    connection = await session.connection()
    await connection.execute(
        _FINISH,
        [{"c": community_id, "k": key, "r": reply} for key, reply in replies],
    )


async def drop_claim(session: AsyncSession, community_id: str, key: str) -> None:
    """Forget an unfinished claim (its attempt failed before replying)."""
    await session.execute(
        delete(ProcessedMessage).where(
            ProcessedMessage.community_id == community_id,
            ProcessedMessage.key == key,
            ProcessedMessage.done.is_(False),
            ProcessedMessage.deferred.is_(False),
        )
    )


async def mark_deferred(session: AsyncSession, community_id: str, key: str) -> None:
    await session.execute(
        update(ProcessedMessage)
        .where(ProcessedMessage.community_id == community_id, ProcessedMessage.key == key)
        .values(deferred=True)
    )


async def purge_expired(session: AsyncSession, *, now: dt.datetime) -> int:
    result = await session.execute(
        delete(ProcessedMessage).where(ProcessedMessage.expires_at < now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
