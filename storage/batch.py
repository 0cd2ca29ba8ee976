"""Run a batch of statements as one transaction, the cheapest way the backend allows.

The webhook writes its ledger and reads conversation states in batches (see
``bot.pipeline.batching``); each batch is a plain function of a SQLAlchemy ``Connection``.

* **PostgreSQL**: asyncpg speaks the protocol on the event loop, so the function
  runs through ``AsyncConnection.run_sync``.
* **SQLite**: aiosqlite sends every call (cursor, execute, fetch, close, commit) to
  its thread and back: about twenty round trips for a batch of four statements,
  each waiting for a turn of a busy event loop. Measured under load, that made a
  batch take 4 ms. Here the whole function runs in one dedicated thread on a plain
  ``sqlite3`` connection: one round trip per batch, and one writer thread, so the
  batches never wait for each other inside SQLite.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import READ_ONLY, configure_sqlite, sqlite_busy_timeout_ms, sqlite_file

T = TypeVar("T")


class BatchDatabase(abc.ABC):
    @abc.abstractmethod
    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work(connection)`` in one transaction (committed if ``write``)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the runner holds."""

    @staticmethod
    def for_engine(engine: AsyncEngine) -> BatchDatabase:
        url = engine.url
        if url.get_backend_name() == "sqlite" and sqlite_file(url):
            return SQLiteThread(
                url.set(drivername="sqlite").render_as_string(False), sqlite_busy_timeout_ms(engine)
            )
        return AsyncRunner(engine)


class AsyncRunner(BatchDatabase):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        if write:
            async with self._engine.begin() as connection:
                return await connection.run_sync(work)
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(**{READ_ONLY: True})
            async with connection.begin():
                return await connection.run_sync(work)


class SQLiteThread(BatchDatabase):
    def __init__(self, url: str, busy_timeout_ms: int = 10_000) -> None:
        # One thread, one connection, kept open between batches; configure_sqlite
        # replaces it if it goes read-only or broken, as it does the async pool's.
        self._engine = create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            connect_args={"timeout": busy_timeout_ms / 1000},
        )
        configure_sqlite(self._engine, busy_timeout_ms)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, work, write)

    def _run(self, work: Callable[[Connection], T], write: bool) -> T:
        with self._engine.connect() as connection:
            if not write:
                connection = connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                return work(connection)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown(wait=True)
