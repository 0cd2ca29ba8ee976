"""Where a backup goes and which old ones ``--keep N`` removes.

FILE names one file, a directory (the backup is ``order-menu-<UTC time>.sqlite3``
or ``.pgdump`` inside it) or a pattern with ``{time}`` in its file name
(``/backups/nightly-{time}.db``). Rotation only ever deletes files of ours: a name
that fits the directory's or the pattern's form exactly, whose manifest beside it
names it; each goes with its manifest. Everything else is left alone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from storage.backup.manifest import BackupError, manifest_path, read

PLACEHOLDER = "{time}"
STAMP = "%Y%m%dT%H%M%SZ"
STAMP_PATTERN = r"\d{8}T\d{6}Z"
EXTENSIONS = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}


@dataclass(frozen=True)
class Destination:
    directory: Path
    prefix: str
    suffix: str
    timestamped: bool

    def path(self, now: dt.datetime) -> Path:
        if not self.timestamped:
            return self.directory / self.prefix
        return self.directory / f"{self.prefix}{now.strftime(STAMP)}{self.suffix}"

    def ours(self, name: str) -> str | None:
        """The time stamp of a name of this form, else None."""
        found = re.fullmatch(
            f"{re.escape(self.prefix)}({STAMP_PATTERN}){re.escape(self.suffix)}", name
        )
        return found[1] if found else None


def destination(spec: str, engine: str) -> Destination:
    """What FILE means (see the module's docstring)."""
    path = Path(spec).expanduser()
    if PLACEHOLDER in path.parent.as_posix():
        raise BackupError(f"FILE: {spec!r}: {PLACEHOLDER} may only be in the file name")
    if PLACEHOLDER in path.name:
        prefix, _, suffix = path.name.partition(PLACEHOLDER)
        if PLACEHOLDER in suffix:
            raise BackupError(f"FILE: {spec!r}: {PLACEHOLDER} may appear once")
        return Destination(path.parent, prefix, suffix, True)
    if path.is_dir() or spec.endswith("/"):
        return Destination(path, "order-menu-", EXTENSIONS[engine], True)
    return Destination(path.parent, path.name, "", False)


def rotate(where: Destination, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of ours in ``where``; the deleted."""
    assert where.timestamped, "a fixed name has no older backups"
    backups: list[tuple[str, Path]] = []
    for candidate in where.directory.iterdir():
        stamp = where.ours(candidate.name)
        if stamp is None or not candidate.is_file() or not manifest_path(candidate).is_file():
            continue
        try:
            if read(candidate).file != candidate.name:
                continue
        except BackupError:
            continue  # a manifest that is not ours: not our backup either
        backups.append((stamp, candidate))
    backups.sort(reverse=True)
    removed = []
    for _, old in backups[keep:]:
        old.unlink()
        manifest_path(old).unlink(missing_ok=True)
        removed.append(old)
    return removed
