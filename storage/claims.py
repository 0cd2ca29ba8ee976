"""Claiming due rows, the same way for every queue (outbox, reminders, waiting-list
holds, broadcast deliveries).

On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``: several processes claim
at once and each gets different rows, none waiting for another. On SQLite there is
nothing to add: every writing transaction begins ``BEGIN IMMEDIATE``
(``storage.engine``), so it holds the one write lock from its first statement, claims
run one after the other, and the second sees the first one's conditional update (a
status or lease moved) or its outcome.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")


def claimable(query: S, dialect: str, *, of: Any = None) -> S:
    """``query`` (the due rows) as a claim on dialect ``dialect``: see the module
    docstring. ``of``: the table to lock when the query joins others."""
    if dialect == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query
