"""The processed-message ledger: which inbound messages were taken, and their replies.

Plain functions of a ``Connection``, run by ``storage.batch`` in one transaction per
batch of messages. The claim is one ``INSERT … ON CONFLICT DO NOTHING RETURNING``:
the database's unique key, not a read-then-write, decides which attempt owns a
message, so two processes receiving the same retry cannot both take it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import ProcessedMessage

_TABLE: Table = ProcessedMessage.__table__  # type: ignore[assignment]
_C = _TABLE.c

_FINISH = (
    update(_TABLE)
    .where(_C.community_id == bindparam("c"), _C.key == bindparam("k"))
    .values(done=True, reply=bindparam("r"))
)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """Built once per dialect and executed with many rows (executemany): one cached
    statement for any batch size, where a VALUES list of varying length would be
    compiled anew for each."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_TABLE).on_conflict_do_nothing().returning(_C.key)


@dataclass(frozen=True)
class LedgerEntry:
    """What is known of a message someone else already claimed."""

    done: bool
    deferred: bool
    reply: str | None
    received_at: dt.datetime


def claim_many(
    connection: Connection,
    community_id: str,
    keys: Sequence[str],
    *,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> dict[str, LedgerEntry | None]:
    """Claim each key; None for the keys claimed now, the existing entry for the others."""
    unique = list(dict.fromkeys(keys))
    inserted = connection.execute(
        _claim_statement(connection.dialect.name),
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
    found: dict[str, LedgerEntry | None] = dict.fromkeys(claimed)
    others = [key for key in unique if key not in claimed]
    if others:
        rows = connection.execute(
            select(_C.key, _C.done, _C.deferred, _C.reply, _C.received_at).where(
                _C.community_id == community_id, _C.key.in_(others)
            )
        )
        for key, done, deferred, reply, received_at in rows:
            found[key] = LedgerEntry(done, deferred, reply, received_at)
    return found


def entry(connection: Connection, community_id: str, key: str) -> LedgerEntry | None:
    row = connection.execute(
        select(_C.done, _C.deferred, _C.reply, _C.received_at).where(
            _C.community_id == community_id, _C.key == key
        )
    ).first()
    return None if row is None else LedgerEntry(*row)


def take_over(
    connection: Connection,
    community_id: str,
    key: str,
    *,
    now: dt.datetime,
    stale_before: dt.datetime,
) -> bool:
    """Claim a message whose first attempt died unfinished (it neither replied nor
    deferred before ``stale_before``). True when this caller now owns it."""
    result = connection.execute(
        update(_TABLE)
        .where(
            _C.community_id == community_id,
            _C.key == key,
            _C.done.is_(False),
            _C.deferred.is_(False),
            _C.received_at < stale_before,
        )
        .values(received_at=now)
    )
    return bool(result.rowcount)


def finish_many(
    connection: Connection, community_id: str, replies: Sequence[tuple[str, str | None]]
) -> None:
    """Record the replies of finished messages (key, reply or None for "success")."""
    connection.execute(_FINISH, [{"c": community_id, "k": k, "r": r} for k, r in replies])


def drop_claim(connection: Connection, community_id: str, key: str) -> None:
    """Forget an unfinished claim (its attempt failed before replying)."""
    connection.execute(
        delete(_TABLE).where(
            _C.community_id == community_id,
            _C.key == key,
            _C.done.is_(False),
            _C.deferred.is_(False),
        )
    )


def mark_deferred(connection: Connection, community_id: str, key: str) -> None:
    connection.execute(
        update(_TABLE).where(_C.community_id == community_id, _C.key == key).values(deferred=True)
    )


def purge_expired(connection: Connection, *, now: dt.datetime) -> int:
    return int(connection.execute(delete(_TABLE).where(_C.expires_at < now)).rowcount)
