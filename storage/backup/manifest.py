"""The manifest of a backup: a JSON file beside it (``FILE.manifest.json``).

It records what a restore checks: the backup file's size and SHA-256 (a truncated or
damaged file is refused before anything is written to the target) and the row count
of every table at the moment of the backup (compared with the restored database).

Why beside the file rather than inside it: one design for both engines (a
``pg_dump`` archive has no room for it); a checksum cannot live inside the file it
checks; an operator reads it with ``cat`` or ``jq`` without any tool of ours; and a
SQLite backup stays a plain copy of the database, openable with ``sqlite3`` as it
is, with no table of ours to remove after a restore.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "order-menu-backup/1"
SUFFIX = ".manifest.json"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the operator.
    ``status`` is the command's exit status: 1 for the input (a file, a database),
    2 for the set-up (a missing or too old ``pg_dump``)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Manifest:
    file: str
    """The backup file's name (in the same directory as the manifest)."""
    engine: str
    """``sqlite`` or ``postgresql``: the engine a restore must go into."""
    database: str
    """The backed-up database's URL without its password."""
    created_at: str
    """UTC, ISO 8601."""
    revision: str | None
    """The schema's migration revision (``alembic_version``)."""
    tool: str
    """What made the file: ``sqlite 3.40.1`` or ``pg_dump 15.4``."""
    bytes: int
    sha256: str
    tables: dict[str, int] = field(default_factory=dict)
    """Rows per table, as of the backup's snapshot."""
    seconds: float = 0.0
    format: str = FORMAT


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + SUFFIX)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (call it off the event loop)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write(manifest: Manifest, backup: Path) -> Path:
    """Write the manifest beside ``backup``, atomically (a half-written manifest
    never looks like a good one)."""
    target = manifest_path(backup)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(asdict(manifest), indent=2, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    return target


def read(backup: Path) -> Manifest:
    """The manifest beside ``backup``; BackupError naming the file when it is missing
    or not one of ours."""
    path = manifest_path(backup)
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{path}: no manifest beside the backup (it records the checksum and the "
            "row counts a restore checks); pass --unchecked to restore without them"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise BackupError(f"{path}: not a manifest of order-menu ({exc})") from None


def verify_file(backup: Path, manifest: Manifest) -> None:
    """Refuse a backup whose size or checksum is not what its manifest recorded."""
    size = backup.stat().st_size
    if size != manifest.bytes:
        raise BackupError(
            f"{backup}: size is {size} bytes, the manifest recorded {manifest.bytes}: "
            "the file is truncated or damaged; use another backup"
        )
    if sha256_of(backup) != manifest.sha256:
        raise BackupError(
            f"{backup}: SHA-256 differs from the manifest's: the file is damaged; "
            "use another backup"
        )


def count_differences(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    """Each table whose row count differs, as ``table: expected N, found M``."""

    def shown(count: int | None) -> str:
        return "no such table" if count is None else str(count)

    return [
        f"{table}: expected {shown(expected.get(table))}, found {shown(found.get(table))}"
        for table in sorted(expected.keys() | found.keys())
        if expected.get(table) != found.get(table)
    ]
