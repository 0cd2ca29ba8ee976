"""One transaction for everything a message does.

A handler's effects (an order, its notifications, a need recorded), the
conversation's new state and the ledger's record of the reply must be kept together
or not at all: if the state save finds another save came first, or the claim was
taken over by another attempt, or the process dies before the end, nothing of the
message may remain, so that the attempt that does commit finds the world as it was.

Handlers keep writing ``async with ctx.sessionmaker.begin() as session`` (and
``ctx.sessionmaker()`` to read): ``begin()`` gives the message's one session (and a
read after it too, so that it sees what was written), a read before any write a
short read-only session of its own. A ``begin()`` block is a SAVEPOINT, so a
handler that catches a failure of its own block (a slot just filled up) goes on
with its earlier work intact, as it did when each block was a transaction of its
own; nothing is committed until the pipeline commits the whole message.

On SQLite the transaction takes the write lock at its first statement (``BEGIN
IMMEDIATE``, see ``storage.engine``) and keeps it until the message is recorded:
handlers must not wait on anything slow (the network) once they have used the
database. They do not: matching runs before, notifications go through the outbox.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

T = TypeVar("T")

READS = re.compile(
    r"\s*(SELECT|WITH\b(?!.*\b(INSERT|UPDATE|DELETE)\b)|SAVEPOINT|RELEASE|ROLLBACK|BEGIN|PRAGMA)",
    re.I | re.S,
)
"""Statements that change nothing (a read, or transaction control)."""


class Sessions(Protocol):
    """What handlers open sessions with: an ``async_sessionmaker`` or a unit of work."""

    def __call__(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]: ...

    def begin(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]: ...


class UnitOfWork:
    """The session of one message; see the module docstring."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.session: AsyncSession = sessionmaker()
        self._readers = readers
        """Read-only sessions (``storage.engine.read_only_engine``) for reads made
        before anything is written: see :meth:`__call__`."""
        self.wrote = False
        """Whether anything but a read reached the database: a unit that only read
        has nothing to commit with the message's record (see ``bot.pipeline.webhook``,
        which then records it in a batch with others')."""
        event.listen(self.session.sync_session, "after_begin", self._watch)

    def _watch(self, session: Session, transaction: Any, connection: Connection) -> None:
        # At the cursor, so that nothing escapes: ORM flushes, Core statements, text,
        # and repository functions given the session's connection alike.
        event.listen(connection, "before_cursor_execute", self._seen)

    def _seen(self, connection: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if not self.wrote and not READS.match(statement):
            self.wrote = True

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        """A session to read with. Once the message has begun its transaction, that
        one (it must see its own writes); before, a short read-only one, as handlers
        had before there was a unit of work: on SQLite the unit's transaction takes the
        write lock (``BEGIN IMMEDIATE``), and a message that only reads (a menu, 帮助)
        would hold it, and queue every other message behind it, for nothing."""
        if self._readers is None or self.session.in_transaction():
            yield self.session
            return
        async with self._readers() as session:
            yield session

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
