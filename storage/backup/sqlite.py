"""SQLite backups with SQLite's online backup API (``sqlite3.Connection.backup``).

Safe while ``serve`` runs: the copy is made in one step inside one read transaction,
and in WAL mode (storage.engine) a reader never blocks the writers nor waits for
them, so the copy is a consistent snapshot and the service goes on. (A copy in many
small steps would restart whenever another connection writes, and might never end
under load.) The functions here block: callers run them in a worker thread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.backup.manifest import BackupError

HEADER = b"SQLite format 3\x00"


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    mode = "ro" if read_only else "rw"
    try:
        return sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the SQLite database {path}: {exc}") from None


def tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [name for (name,) in rows]


def row_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Rows per table, read in one transaction (one snapshot)."""
    connection.execute("BEGIN")
    try:
        return {
            name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            for name in tables(connection)
        }
    finally:
        connection.execute("COMMIT")


def revision(connection: sqlite3.Connection) -> str | None:
    if "alembic_version" not in tables(connection):
        return None
    row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _check(connection: sqlite3.Connection, path: Path) -> None:
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a usable SQLite database ({exc})") from None
    if problems != ["ok"]:
        raise BackupError(f"{path}: the SQLite database is damaged: {'; '.join(problems[:3])}")


def backup(source: Path, target: Path) -> tuple[dict[str, int], str | None]:
    """Copy the database at ``source`` to the new file ``target``; its row counts
    and revision, read from the copy itself (so they are the snapshot's exactly)."""
    if not source.is_file():
        raise BackupError(f"DATABASE_URL: no SQLite database at {source}")
    src = _connect(source, read_only=False)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: all pages in one step, one snapshot
            # A copy in one file (no -wal beside it), whatever the source's mode.
            dst.execute("PRAGMA journal_mode=DELETE")
            _check(dst, target)
            return row_counts(dst), revision(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"backing up the SQLite database {source} failed: {exc}") from None
    finally:
        src.close()


def existing_tables(path: Path) -> dict[str, int]:
    """Rows per table of the database at ``path``; empty when there is no file."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    connection = _connect(path, read_only=True)
    try:
        return row_counts(connection)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"DATABASE_URL: {path} is not a SQLite database ({exc})") from None
    finally:
        connection.close()


def restore(source: Path, target: Path) -> dict[str, int]:
    """Copy the backup at ``source`` into the (empty) database file ``target``; the
    restored database's row counts."""
    with source.open("rb") as stream:
        if stream.read(len(HEADER)) != HEADER:
            raise BackupError(f"{source}: not a SQLite backup (no SQLite header)")
    src = _connect(source, read_only=True)
    try:
        _check(src, source)
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")  # as storage.engine keeps it
            return row_counts(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restoring {source} into {target} failed: {exc}") from None
    finally:
        src.close()
