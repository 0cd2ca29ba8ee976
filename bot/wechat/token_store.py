"""The access-token cache in the database: one token per community, shared by processes.

WeChat rate-limits token fetches, and a forced fetch invalidates the previous token;
processes that each kept their own would knock each other's tokens out. So the
``access_tokens`` row is the one cache.

A refresh never holds a database lock while it waits for WeChat: on SQLite the row
lock is the whole database's write lock, and an HTTP call of up to the client's
timeout (times its attempts) under it stalled every other write of the service.
Instead :meth:`TokenStore.refresh`:

1. reads the row (no lock) and returns its token if the ``keep`` callback accepts it;
2. fetches from WeChat, outside any transaction;
3. then, in a short transaction, locks the row (PostgreSQL: ``INSERT ... ON CONFLICT
   DO NOTHING`` then ``SELECT ... FOR UPDATE``; SQLite: the engine's ``BEGIN
   IMMEDIATE``), looks again and stores.

Within a process the API client's asyncio lock makes refreshes a single flight.
Across processes two may now fetch at once; what WeChat's ``stable_token`` does then
(its getStableAccessToken documentation) keeps the result correct:

- **Normal mode** (a token missing or near expiry): while a token is valid, every
  normal-mode call returns that same token; near expiry WeChat issues the next one
  and the old one stays valid until it expires. Two processes fetching at once get
  the same token, or two valid ones. Under the lock, a usable token that another
  process stored meanwhile is kept and ours dropped: it may come from a forced
  refresh WeChat handled after our fetch, which made ours invalid, and if not, both
  are valid anyway.
- **Forced** (WeChat rejected the token in hand, ``stale``): step 1 first looks for a
  token other than the stale one, so a process that finds another's replacement
  uses it and forces nothing. Two that force at once cannot knock each other out:
  WeChat does not refresh again within 30 s of a forced refresh and returns the
  same new token to both. So a forced fetch always stores what it got: a token
  another process stored meanwhile is either the same one or an older normal-mode
  token that our forced refresh just invalidated.

The worst case left (a process stalls for over 30 s between its forced fetch and its
store) ends with a rejected token, which the client refreshes once more.
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

    async def refresh(
        self, fetch: Fetch, keep: Callable[[StoredToken], bool], *, forced: bool
    ) -> StoredToken:
        """The stored token if ``keep`` accepts it, else a fetched one, stored.

        ``fetch`` (one HTTP attempt) runs outside any transaction; if it raises, the
        row is unchanged. ``forced``: ``fetch`` asks WeChat for a forced refresh, so
        what it returns is stored even if another process stored a token meanwhile
        (see the module doc for why each case is correct).
        """
        current = await self.load()
        if current is not None and keep(current):
            return current
        token, expires_in = await fetch()
        async with self._sessionmaker.begin() as session:
            row = await self._lock_row(session)
            latest = _stored(row)
            if not forced and keep(latest):
                return latest  # another process refreshed while we fetched
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
