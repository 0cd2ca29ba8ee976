"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

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
    ``read_only_engine``) and starts a plain ``BEGIN``. A connection that turns out
    read-only is replaced rather than kept (``configure_sqlite``).

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
        if sqlite_file(parsed):  # an in-memory database has a one-connection pool
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


# SQLite primary result codes (https://sqlite.org/rescode.html).
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8

_WRITABLE = "order_menu_writable"
_FRESH = "order_menu_fresh"


def sqlite_code(exc: BaseException | None) -> int | None:
    """The primary SQLite result code of a ``sqlite3`` error (wrapped or not)."""
    original = getattr(exc, "orig", None) or exc
    code = getattr(original, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def sqlite_write_refused(dbapi_connection: Any) -> str | None:
    """Why this SQLite connection cannot write right now (None: it can).

    A connection opened while the database file or its ``-wal`` could not be opened
    for writing (permissions, an immutable file, a read-only mount) is silently
    opened read-only, and stays read-only for its whole life: that is how a few
    seconds of an unwritable file used to break the process until a restart.

    The check is a write rolled back: ``BEGIN IMMEDIATE`` alone does not tell (on a
    read-only main file it quietly starts a read transaction). It never waits: the
    busy timeout is 0 for the check, and SQLITE_BUSY means another connection holds
    the write lock, which a read-only connection is refused before it gets to ask
    for. So it holds the write lock for microseconds, or not at all. Other errors
    (I/O) are raised.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout")
        busy = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout=0")
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.execute("PRAGMA user_version")
                version = int(cursor.fetchone()[0])
                cursor.execute(f"PRAGMA user_version={version}")
            finally:
                cursor.execute("ROLLBACK")
        except sqlite3.Error as exc:
            code = sqlite_code(exc)
            if code in (SQLITE_BUSY, SQLITE_LOCKED):
                return None
            if code == SQLITE_READONLY:
                return f"{exc.sqlite_errorname}: {exc}"
            raise
        finally:
            cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
    finally:
        cursor.close()
    return None


def configure_sqlite(engine: Engine, busy_timeout_ms: int = 10_000) -> None:
    """The connection settings every SQLite engine of ours needs (see ``create_engine``),
    and the replacement of connections that are read-only for good.

    When its files cannot be opened for writing (permissions, an immutable file, a
    read-only mount), SQLite opens a connection read-only without a word, and the
    connection stays read-only for its whole life, whatever happens to the files
    later. Pooled, such connections kept failing every write long after the file
    was writable again, until a restart. So:

    * each new connection checks whether it can write (``sqlite_write_refused``);
      one that cannot serves the checkout it was opened for (reads work), and is
      reopened at its next checkout instead of being handed out again: the first
      request after the file is writable again gets a connection that writes;
    * SQLITE_READONLY from a connection (it was opened read-only, or its file was
      moved or replaced under it) counts as a lost connection: SQLAlchemy discards
      it instead of pooling it, and the error is one ``database_unavailable`` knows.
      Only that connection: the others, opened while the file was writable, still
      write through the files they hold open.

    Other I/O errors are left alone on purpose. They do not outlive their cause (the
    connection's files are still open for writing, and SQLite resets its pager once
    the transaction is over), whereas closing connections while the disk fails them
    is harmful: the last one to close checkpoints, and on a ``-shm`` that can no
    longer be written that checkpoint killed the process with SIGBUS in our fault
    tests.

    Both engines of a process use this: the async engine's pool and the batch
    thread's connection (``storage.batch``).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
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
        record.info[_WRITABLE] = sqlite_write_refused(dbapi_connection) is None
        record.info[_FRESH] = True

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        _dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        if record.info.pop(_FRESH, False) or record.info.get(_WRITABLE, True):
            return
        # The pool opens a new connection and checks it out instead.
        raise DisconnectionError("SQLite connection was opened read-only: reopening it")

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if sqlite_code(context.original_exception) == SQLITE_READONLY:
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = False

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # WAL readers never wait for the writer
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "order_menu_read_only"
"""Execution option of a session that only reads: on SQLite its transaction does not
take the write lock, so it neither waits for writers nor makes them wait."""


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


def insert_new(session: AsyncSession, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``model``'s table: a row that is
    already there (a retried message, a double click) is left as it was. Both
    backends spell it the same, through their own dialect's ``insert``."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()


async def write_refused(engine: AsyncEngine) -> str | None:
    """Why a write on ``engine``'s database would fail right now (None: it would not).
    Cheap enough for every readiness probe, and never waits for a writer.

    SQLite: a new connection, as the next one the pool opens would be (a pooled one
    opened earlier may still write through its open file while no new one can), and
    a write rolled back on it (``sqlite_write_refused``). PostgreSQL: the server is a
    standby in recovery, or transactions are read-only by default. Errors reaching
    the database are raised."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if sqlite_file(url) and not str(url.database).startswith("file:"):
            return await asyncio.to_thread(_sqlite_file_write_refused, Path(str(url.database)))
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            return await connection.run_sync(lambda _: sqlite_write_refused(raw.dbapi_connection))
    async with engine.connect() as connection:
        in_recovery, read_only = (
            await connection.execute(
                text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
            )
        ).one()
    if in_recovery:
        return "the server is a standby in recovery"
    if read_only == "on":
        return "transactions are read-only (default_transaction_read_only)"
    return None


def sqlite_file(url: URL) -> bool:
    """A database in a file, not in memory (as SQLAlchemy's SQLite dialects tell)."""
    return url.database not in (None, "", ":memory:") and url.query.get("mode") != "memory"


def _sqlite_file_write_refused(path: Path) -> str | None:
    # mode=rw: never create the file; an unwritable one is opened read-only.
    uri = f"{path.expanduser().resolve().as_uri()}?mode=rw"
    connection = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
    try:
        return sqlite_write_refused(connection)
    finally:
        connection.close()
