"""The access-token cache in the database: one token per community, shared by processes.

WeChat rate-limits token fetches, and a forced fetch invalidates the previous token;
processes that each fetched their own would knock each other's tokens out. So the
``access_tokens`` row is the one cache, and a refresh happens inside a transaction
that holds the row's lock:

- PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` makes sure the row exists, then
  ``SELECT ... FOR UPDATE`` locks it; a second process blocks there until the first
  commits, and then reads the token the first one fetched.
- SQLite: the engine begins every transaction with ``BEGIN IMMEDIATE``, so refreshing
  transactions are serialised by the database's write lock; ``FOR UPDATE`` renders as
  nothing there.

Either way the refresher re-reads the row after taking the lock and fetches only when
what it finds is still not good enough (the ``keep`` callback decides).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import dialect_name
from storage.models import AccessToken
from storage.types import utcnow

REFRESH_AHEAD = dt.timedelta(minutes=5)
"""Refresh a token this long before it expires (WeChat hands out a new one then)."""

_PLACEHOLDER_EXPIRY = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class StoredToken:
    token: str
    expires_at: dt.datetime
    fetched_at: dt.datetime

    def __repr__(self) -> str:
        # Tokens are credentials: keep them out of reprs, logs and assertion messages.
        return f"StoredToken(expires_at={self.expires_at.isoformat()})"

    def refresh_at(self, ahead: dt.timedelta = REFRESH_AHEAD) -> dt.datetime:
        """When to stop using the token and fetch another.

        ``ahead`` before expiry, but never earlier than half-way through the token's
        lifetime: a server handing out short-lived tokens must not turn every call
        into a token fetch.
        """
        lifetime = self.expires_at - self.fetched_at
        return self.expires_at - min(ahead, lifetime / 2)

    def usable(self, now: dt.datetime | None = None) -> bool:
        return bool(self.token) and (now or utcnow()) < self.refresh_at()


Fetch = Callable[[], Awaitable[tuple[str, int]]]
"""Fetch a token from WeChat: returns (token, expires_in seconds)."""


class TokenStore:
    """Reads and refreshes the ``access_tokens`` row of one community."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], community_id: str) -> None:
        self._sessionmaker = sessionmaker
        self._community_id = community_id

    async def load(self) -> StoredToken | None:
        """The stored token, without taking the refresh lock."""
        async with self._sessionmaker() as session:
            row = await session.get(AccessToken, self._community_id)
            return _stored(row) if row is not None else None

    async def refresh(self, fetch: Fetch, keep: Callable[[StoredToken], bool]) -> StoredToken:
        """Under the refresh lock: the stored token if ``keep`` accepts it, else a fetched one.

        The lock is held while ``fetch`` runs (one HTTP attempt, bounded by its
        timeout); if it raises, the transaction rolls back and the row is unchanged.
        """
        async with self._sessionmaker.begin() as session:
            row = await self._lock_row(session)
            current = _stored(row)
            if keep(current):
                return current
            token, expires_in = await fetch()
            now = utcnow()
            row.token = token
            row.expires_at = now + dt.timedelta(seconds=expires_in)
            row.updated_at = now
            return _stored(row)

    async def _lock_row(self, session: AsyncSession) -> AccessToken:
        """Create the row if missing, then lock it and read its latest committed state."""
        insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
        await session.execute(
            insert(AccessToken)
            .values(
                community_id=self._community_id,
                token="",
                expires_at=_PLACEHOLDER_EXPIRY,
                updated_at=_PLACEHOLDER_EXPIRY,
            )
            .on_conflict_do_nothing()
        )
        row = await session.scalar(
            select(AccessToken)
            .where(AccessToken.community_id == self._community_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted above, or by whoever held the lock
        return row


def _stored(row: AccessToken) -> StoredToken:
    return StoredToken(token=row.token, expires_at=row.expires_at, fetched_at=row.updated_at)
