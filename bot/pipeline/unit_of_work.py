"""One transaction for everything a message does.

A handler's effects (an order, its notifications, a need recorded), the
conversation's new state and the ledger's record of the reply must be kept together
or not at all: if the state save finds another save came first, or the claim was
taken over by another attempt, or the process dies before the end, nothing of the
message may remain, so that the attempt that does commit finds the world as it was.

Handlers keep writing ``async with ctx.sessionmaker.begin() as session`` (and
``ctx.sessionmaker()`` to read): here both give the message's one session. A
``begin()`` block is a SAVEPOINT, so a handler that catches a failure of its own
block (a slot just filled up) goes on with its earlier work intact, as it did
when each block was a transaction of its own; nothing is committed until the
pipeline commits the whole message.

On SQLite the transaction takes the write lock at its first statement (``BEGIN
IMMEDIATE``, see ``storage.engine``) and keeps it until the message is recorded:
handlers must not wait on anything slow (the network) once they have used the
database. They do not: matching runs before, notifications go through the outbox.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


class Sessions(Protocol):
    """What handlers open sessions with: an ``async_sessionmaker`` or a unit of work."""

    def __call__(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]: ...

    def begin(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]: ...


class UnitOfWork:
    """The session of one message; see the module docstring."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.session: AsyncSession = sessionmaker()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        yield self.session

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        async with self.session.begin_nested():
            yield self.session

    async def run(self, step: Callable[[Connection], T]) -> T:
        """A plain ``Connection`` function (``storage.repositories``) in this transaction."""
        return await self.session.run_sync(lambda s: step(s.connection()))

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        """Forget everything written so far; the session goes on in a new transaction."""
        await self.session.rollback()

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back."""
        await self.session.close()
