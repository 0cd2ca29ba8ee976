"""Locks: one per key within a process (:class:`KeyedLocks`), and a connection of its
own holding PostgreSQL advisory locks across processes (:class:`AdvisoryConnection`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_TRY = text("SELECT pg_try_advisory_lock(:cls, :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:cls, :key)")
_PING = text("SELECT 1")


class KeyedLocks:
    """``async with locks(openid):`` runs one resident's messages one at a time.

    asyncio.Lock wakes waiters in the order they queued, so a resident's messages are
    handled in arrival order; different residents never wait for each other. A
    lock lives only while someone holds or waits for it, so memory follows the
    number of residents talking right now, not of all residents ever seen.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, key: str, *, max_wait: float | None = None) -> AsyncIterator[None]:
        """Hold ``key``'s lock; with ``max_wait``, go on without it after that many
        seconds (for a caller that knows the holder may never let go)."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        held = False
        try:
            try:
                async with asyncio.timeout(max_wait):
                    held = await lock.acquire()
            except TimeoutError:
                pass
            yield
        finally:
            if held:
                lock.release()
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class AdvisoryConnection:
    """One connection, out of the pool, holding PostgreSQL session-level advisory locks
    (the two-key form, ``(cls, key)``); its queries run one at a time.

    Such a lock belongs to the connection that took it: only an unlock on that same
    connection releases it, or the connection closing (a crash, a database restart),
    which releases every lock it held. The connection is in autocommit: the locks
    belong to the session, and it must not sit idle in a transaction (which would
    hold back VACUUM everywhere). It is opened by the first :meth:`try_lock` after
    being closed. Used by ``bot.pipeline.resident_locks`` (many residents' locks on a few
    connections) and ``bot.jobs.leader`` (the one leadership lock).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._io = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    async def try_lock(self, cls: int, key: int) -> bool:
        """``pg_try_advisory_lock``: never waits. Raises if the database cannot be reached
        (the connection is then left as it is: the caller decides whether to close it)."""
        async with self._io:
            connection = await self._connected()
            return bool(await connection.scalar(_TRY, {"cls": cls, "key": key}))

    async def unlock(self, cls: int, key: int) -> None:
        async with self._io:
            if self._connection is None:
                return  # the connection broke: PostgreSQL released its locks
            try:
                await self._connection.execute(_UNLOCK, {"cls": cls, "key": key})
            except Exception:
                await self._drop()
                raise

    async def ping(self) -> None:
        """Raises if the connection, and so every lock it held, is gone (closing it)."""
        async with self._io:
            if self._connection is None:
                raise ConnectionError("the advisory-lock connection is closed")
            try:
                await self._connection.execute(_PING)
            except Exception:
                await self._drop()
                raise

    async def _connected(self) -> AsyncConnection:
        if self._connection is None:
            connection = await self._engine.connect()
            try:
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            except BaseException:
                await connection.close()
                raise
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Close the connection, releasing every lock it holds."""
        async with self._io:
            await self._drop()
