"""Backups and restores of the whole database, for ``order-menu db backup|restore``.

SQLite: the online backup API (storage.backup.sqlite); PostgreSQL: ``pg_dump`` and
``pg_restore`` (storage.backup.postgres). Either way a manifest beside the backup
(storage.backup.manifest) records its checksum and every table's row count, and a
restore checks both. A restore only ever goes into an empty database: restoring
over live data would mix two histories.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.backup import postgres, sqlite
from storage.backup.manifest import (
    BackupError,
    Manifest,
    count_differences,
    manifest_path,
    read,
    sha256_of,
    utc_now,
    verify_file,
    write,
)
from storage.backup.rotation import destination, rotate
from storage.engine import sqlite_file

__all__ = ["BackupError", "BackupResult", "RestoreResult", "backup", "restore"]


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    removed: list[Path] = field(default_factory=list)


@dataclass
class RestoreResult:
    counts: dict[str, int]
    manifest: Manifest | None
    differences: list[str]
    seconds: float


def _engine(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _display(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if not sqlite_file(parsed):
        raise BackupError(f"DATABASE_URL: {_display(url)} is in memory: nothing to back up")
    return Path(str(parsed.database)).expanduser()


def _prepare(target: Path) -> tuple[Path, Path]:
    """The backup's path, checked new, and the partial file it is written to first
    (renamed when complete, so a half-made backup never has the backup's name)."""
    for existing in (target, manifest_path(target)):
        if existing.exists():
            raise BackupError(f"FILE: {existing} exists already; a backup never overwrites")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # Created owner-only before a byte is written: sqlite3 and pg_dump write into it
    # and keep its mode, so nobody can open the copy of residents' data half-way.
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return target, partial


def _seal(path: Path) -> tuple[int, str]:
    """Make sure the finished backup is readable by its owner only (it holds
    residents' phone numbers and addresses); its size and SHA-256."""
    path.chmod(0o600)
    return path.stat().st_size, sha256_of(path)


def _checked_manifest(source: Path, checked: bool) -> Manifest | None:
    """The backup's manifest, the file checked against it (None: ``checked`` off)."""
    if not source.is_file():
        raise BackupError(f"FILE: no backup at {source}")
    if not checked:
        return None
    manifest = read(source)
    verify_file(source, manifest)
    return manifest


async def backup(url: str, spec: str, keep: int | None = None) -> BackupResult:
    """Back the database up to FILE ``spec`` (a file, a directory, a pattern), write
    its manifest, then keep only the newest ``keep`` backups of ours there."""
    engine = _engine(url)
    where = await asyncio.to_thread(destination, spec, engine)
    if keep is not None and not where.timestamped:
        raise BackupError(
            f"--keep: FILE {spec} is one fixed name; give a directory or a pattern "
            "with {time} (e.g. backups/order-menu-{time}.db)",
            status=2,
        )
    target, partial = await asyncio.to_thread(_prepare, where.path(dt.datetime.now(dt.UTC)))
    started = time.monotonic()
    try:
        if engine == "sqlite":
            counts, revision = await asyncio.to_thread(sqlite.backup, _sqlite_path(url), partial)
            made_by = f"sqlite {sqlite3.sqlite_version}"
        else:
            counts, revision, made_by = await postgres.backup(url, _display(url), partial)
        size, checksum = await asyncio.to_thread(_seal, partial)
        manifest = Manifest(
            file=target.name,
            engine=engine,
            database=_display(url),
            created_at=utc_now(),
            revision=revision,
            tool=made_by,
            bytes=size,
            sha256=checksum,
            tables=counts,
            seconds=round(time.monotonic() - started, 3),
        )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    await asyncio.to_thread(write, manifest, target)
    removed = await asyncio.to_thread(rotate, where, keep) if keep is not None else []
    return BackupResult(target, manifest, removed)


async def restore(url: str, source: Path, *, checked: bool = True) -> RestoreResult:
    """Restore the backup ``source`` into the empty database at ``url``; with
    ``checked``, first its checksum and afterwards its row counts against its manifest."""
    engine = _engine(url)
    display = _display(url)
    manifest = await asyncio.to_thread(_checked_manifest, source, checked)
    if manifest is not None and manifest.engine != engine:
        raise BackupError(
            f"FILE: {source} is a {manifest.engine} backup; DATABASE_URL {display} is {engine}"
        )
    if engine == "sqlite":
        existing = await asyncio.to_thread(sqlite.existing_tables, _sqlite_path(url))
    else:
        existing = await postgres.existing_tables(url)
    if existing:
        rows = sum(existing.values())
        busiest = max(existing, key=lambda name: existing[name])
        raise BackupError(
            f"DATABASE_URL: the database {display} is not empty ({len(existing)} tables, "
            f"{rows} rows, e.g. {busiest}: {existing[busiest]}); a restore only goes into "
            "an empty database: create a new one and point DATABASE_URL at it"
        )
    started = time.monotonic()
    if engine == "sqlite":
        counts = await asyncio.to_thread(sqlite.restore, source, _sqlite_path(url))
    else:
        counts = await postgres.restore(url, display, source)
    differences = count_differences(manifest.tables, counts) if manifest else []
    return RestoreResult(counts, manifest, differences, time.monotonic() - started)
