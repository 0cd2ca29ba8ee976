"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

WAIT = "order_menu_wait"
"""Execution option carrying an engine's ``pool_timeout`` (see ``create_engine``), so
that other connections to the same database (the batch thread's) wait as long."""


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    pool_timeout: float = 10.0,
    echo: bool = False,
) -> AsyncEngine:
    """Create an async engine with the settings each backend needs to be safe.

    ``pool_timeout`` is how long work waits for the database before it fails (and
    a web request is answered 503): for a free pooled connection on both backends,
    and on SQLite also for the write lock (the busy timeout). One wait, because to
    the request it is the same thing: the database is busy.

    SQLite: WAL (readers never wait for the writer), a busy timeout (writers queue
    instead of failing with "database is locked"), foreign keys on, and every
    transaction started with ``BEGIN IMMEDIATE``. The last one matters: a deferred
    transaction that reads and then writes can fail at once with SQLITE_BUSY when
    another writer got there first, whatever the busy timeout; taking the write lock
    up front makes writers simply queue. Work that only reads says so (``READ_ONLY``,
    ``read_only_engine``) and starts a plain ``BEGIN``.

    PostgreSQL: a bounded pool with pre-ping, so a restarted server is survived by
    reconnecting rather than by failing the next request.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "execution_options": {WAIT: pool_timeout}}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": pool_timeout}
        if _sqlite_file(parsed):  # an in-memory database has a one-connection pool
            kwargs["pool_timeout"] = pool_timeout
    else:
        kwargs.update(pool_size=pool_size, pool_timeout=pool_timeout, pool_pre_ping=True)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        configure_sqlite(engine.sync_engine, sqlite_busy_timeout_ms(engine))
    return engine


def sqlite_busy_timeout_ms(engine: AsyncEngine | Engine) -> int:
    """The SQLite busy timeout of connections on ``engine``'s database (``WAIT``)."""
    return int(float(engine.get_execution_options().get(WAIT, 10.0)) * 1000)


def configure_sqlite(engine: Engine, busy_timeout_ms: int = 10_000) -> None:
    """The connection settings every SQLite engine of ours needs (see ``create_engine``)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL needs the lock another connection
        # may hold right now (several processes opening a new database at once).
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # WAL readers never wait for the writer
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "order_menu_read_only"
"""Execution option of a session that only reads: on SQLite its transaction does not
take the write lock, so it neither waits for writers nor makes them wait."""


async def read_only(session: AsyncSession) -> AsyncSession:
    """Mark a new session as read-only (call before its first statement)."""
    await session.connection(execution_options={READ_ONLY: True})
    return session


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for work that only reads: the same pool, its transactions marked
    ``READ_ONLY`` (on SQLite they take no write lock, so a page that only reads is
    answered while a writer holds the lock), and on PostgreSQL declared READ ONLY,
    so a write slipped into a page that should only read fails loudly in the tests."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return engine.execution_options(**options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """One session per unit of work; objects stay usable after commit (no reload)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def dialect_name(session: AsyncSession) -> str:
    """``sqlite`` or ``postgresql``: for the few statements that differ between them."""
    return session.get_bind().dialect.name


def _sqlite_file(url: URL) -> bool:
    """A database in a file, not in memory (as SQLAlchemy's SQLite dialects tell)."""
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"
