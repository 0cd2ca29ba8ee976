"""The processed-message ledger: which inbound messages were taken, and their replies.

Plain functions of a ``Connection``: claims run in ``storage.batch`` batches, the
record of a reply inside the message's own unit of work. The claim is one
``INSERT … ON CONFLICT DO NOTHING RETURNING``: the database's unique key, not a
read-then-write, decides which attempt owns a message, so two processes receiving
the same retry cannot both take it.

**Fencing.** A claim carries its attempt's ``owner`` token and a ``lease_until``
measured on the database's clock (:func:`database_now`), never on the clock of the
host that happens to look. When the lease has run out another attempt may take the
claim over with a new token; from then on the first attempt's :func:`finish`
matches no row and raises :class:`ClaimLost`, so its transaction, with every effect
of the message, is rolled back. Two attempts may run; only one can commit.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import ProcessedMessage

_TABLE: Table = ProcessedMessage.__table__  # type: ignore[assignment]
_C = _TABLE.c


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """Built once per dialect and executed with many rows (executemany): one cached
    statement for any batch size, where a VALUES list of varying length would be
    compiled anew for each."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_TABLE).on_conflict_do_nothing().returning(_C.key)


class ClaimLost(Exception):
    """The claim was taken over by another attempt: this one must not commit."""


@dataclass(frozen=True)
class LedgerEntry:
    """What is known of a message someone else already claimed."""

    done: bool
    deferred: bool
    reply: str | None
    received_at: dt.datetime


@dataclass(frozen=True)
class Deferred:
    """A deferred message taken over to be run again."""

    key: str
    payload: str
    owner: str
    attempts: int


def database_now(connection: Connection) -> dt.datetime:
    """The time on the database's clock, which every process shares.

    PostgreSQL: ``clock_timestamp()`` of the server. SQLite lives on one host, whose
    processes share one clock; it has no time type of its own, so the host's UTC time
    is used, as the other timestamps are written."""
    if connection.dialect.name == "postgresql":
        now = connection.execute(select(func.clock_timestamp())).scalar_one()
        assert isinstance(now, dt.datetime)
        return now.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def claim_many(
    connection: Connection,
    community_id: str,
    owners: dict[str, str],
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    expires_at: dt.datetime,
) -> dict[str, LedgerEntry | None]:
    """Claim each key of ``owners`` (key → the token of the attempt claiming it); None
    for the keys claimed now, the existing entry for the others."""
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
                "owner": owner,
                "lease_until": now + lease,
                "attempts": 0,
            }
            for key, owner in owners.items()
        ],
    )
    claimed = set(inserted.scalars())
    found: dict[str, LedgerEntry | None] = dict.fromkeys(claimed)
    others = [key for key in owners if key not in claimed]
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
    owner: str,
    now: dt.datetime,
    lease: dt.timedelta,
) -> bool:
    """Claim a message whose attempt died unfinished: neither replied nor deferred, and
    its lease ran out. True when ``owner`` now holds it (the old owner is fenced)."""
    result = connection.execute(
        update(_TABLE)
        .where(
            _C.community_id == community_id,
            _C.key == key,
            _C.done.is_(False),
            _C.deferred.is_(False),
            _C.lease_until < now,
        )
        .values(owner=owner, lease_until=now + lease, received_at=now)
    )
    return bool(result.rowcount)


def finish(
    connection: Connection, community_id: str, key: str, *, owner: str, reply: str | None
) -> bool:
    """Record the reply of the attempt holding the claim, in its unit of work.

    Returns True if the message had been deferred (the resident was answered
    "success": the reply must go out by the API). Raises :class:`ClaimLost` when
    ``owner`` no longer holds the claim."""
    deferred = connection.execute(
        update(_TABLE)
        .where(
            _C.community_id == community_id,
            _C.key == key,
            _C.owner == owner,
            _C.done.is_(False),
        )
        .values(done=True, reply=reply, payload=None)
        .returning(_C.deferred)
    ).scalar_one_or_none()
    if deferred is None:
        raise ClaimLost(key)
    return bool(deferred)


def release(
    connection: Connection,
    community_id: str,
    key: str,
    *,
    owner: str,
    now: dt.datetime,
    retry_in: dt.timedelta,
) -> None:
    """Give up a claim whose attempt failed before replying. A message not yet answered
    is forgotten (WeChat's next retry claims it afresh); a deferred one, answered
    "success" and now ours alone, stays, to be run again in ``retry_in``."""
    mine = (_C.community_id == community_id, _C.key == key, _C.owner == owner, _C.done.is_(False))
    connection.execute(delete(_TABLE).where(*mine, _C.deferred.is_(False)))
    connection.execute(
        update(_TABLE).where(*mine, _C.deferred.is_(True)).values(lease_until=now + retry_in)
    )


def defer(
    connection: Connection,
    community_id: str,
    key: str,
    *,
    owner: str,
    payload: str,
    now: dt.datetime,
    lease: dt.timedelta,
) -> bool:
    """Mark a message the resident was answered "success" for, storing it so that any
    process can run it again after ``lease``. False if it finished first."""
    result = connection.execute(
        update(_TABLE)
        .where(
            _C.community_id == community_id,
            _C.key == key,
            _C.owner == owner,
            _C.done.is_(False),
        )
        .values(deferred=True, payload=payload, lease_until=now + lease)
    )
    return bool(result.rowcount)


def defer_for_owner(connection: Connection, community_id: str, key: str, *, payload: str) -> bool:
    """Mark a message deferred on behalf of the attempt holding it, which has not
    answered within WeChat's time (stalled or dead): the retry that found it so answers
    "success", and the message is stored, so that its owner's reply goes out through
    the outbox, or, if the owner is dead, it is run again when the owner's claim lease
    runs out. That lease is left as it is, on purpose: a live owner defers its own
    message at its deadline, before its lease ends, so one that has not is presumed
    dead (if it is only stalled, the token fences it). False if it finished
    meanwhile, or its claim was given up."""
    result = connection.execute(
        update(_TABLE)
        .where(_C.community_id == community_id, _C.key == key, _C.done.is_(False))
        .values(deferred=True, payload=payload)
    )
    return bool(result.rowcount)


def take_deferred(
    connection: Connection,
    community_id: str,
    *,
    owners: list[str],
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[Deferred]:
    """Take over deferred messages whose attempt died or failed (lease run out), at
    most one per token in ``owners``, oldest first."""
    rows = connection.execute(
        select(_C.key, _C.owner, _C.payload, _C.attempts)
        .where(
            _C.community_id == community_id,
            _C.deferred.is_(True),
            _C.done.is_(False),
            _C.lease_until < now,
        )
        .order_by(_C.received_at)
        .limit(len(owners))
    ).all()
    taken = []
    for (key, old_owner, payload, attempts), owner in zip(rows, owners, strict=False):
        result = connection.execute(
            update(_TABLE)
            .where(
                _C.community_id == community_id,
                _C.key == key,
                _C.owner.is_not_distinct_from(old_owner),
                _C.done.is_(False),
                _C.lease_until < now,
            )
            .values(owner=owner, lease_until=now + lease, attempts=_C.attempts + 1)
        )
        if result.rowcount:  # else another process took it first
            taken.append(Deferred(key, payload or "", owner, attempts + 1))
    return taken


def give_up(connection: Connection, community_id: str, key: str, *, owner: str, error: str) -> bool:
    """Settle a deferred message that failed too often: done, with its error kept."""
    result = connection.execute(
        update(_TABLE)
        .where(_C.community_id == community_id, _C.key == key, _C.owner == owner)
        .where(_C.done.is_(False))
        .values(done=True, error=error[:2000])
    )
    return bool(result.rowcount)


def purge_expired(connection: Connection, *, now: dt.datetime) -> int:
    """Forget old messages, but never a deferred one still to be run."""
    return int(
        connection.execute(
            delete(_TABLE).where(
                _C.expires_at < now, (_C.done.is_(True)) | (_C.deferred.is_(False))
            )
        ).rowcount
    )
