"""``order-menu db``: database maintenance (migrations, backups and restores)."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.common import fail, run, settings_or_exit
from storage import migrate
from storage.engine import create_engine


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations (serve also does this at start-up)."""
    settings = settings_or_exit()

    async def go() -> tuple[str | None, str | None]:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            return await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    before, after = run(go(), settings)
    if before == after:
        click.echo(f"database is current (revision {after})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after}")


@db.command("backup")
@click.argument("file")
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    help="Then delete all but the newest N backups of ours in FILE's directory "
    "(FILE: a directory or a pattern with {time}).",
)
def db_backup(file: str, keep: int | None) -> None:
    """Back the database up to FILE, safely while serve runs.

    FILE is a file, a directory (the backup is order-menu-<UTC time>.sqlite3 or
    .pgdump in it) or a pattern such as backups/nightly-{time}.db. SQLite: the online
    backup API; PostgreSQL: pg_dump --format=custom of one snapshot (the password
    from DATABASE_URL goes to it in PGPASSWORD only). FILE.manifest.json beside it
    records its checksum and every table's row count, which restore checks.
    """
    from storage.backup import BackupError, backup

    settings = settings_or_exit()
    try:
        result = run(backup(settings.database_url, file, keep), settings)
    except BackupError as exc:
        fail(str(exc), exc.status)
    manifest = result.manifest
    click.echo(
        f"backed up {manifest.database} to {result.path} in {manifest.seconds:.1f} s: "
        f"{len(manifest.tables)} tables, {sum(manifest.tables.values())} rows, "
        f"{manifest.bytes / 1e6:.1f} MB (revision {manifest.revision or '-'})"
    )
    click.echo(f"manifest: {result.path}.manifest.json")
    for old in result.removed:
        click.echo(f"removed the older backup {old} (--keep {keep})")


@db.command("restore")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--unchecked",
    is_flag=True,
    help="Restore a backup whose manifest is lost: no checksum or count check.",
)
def db_restore(file: Path, unchecked: bool) -> None:
    """Restore the backup FILE into the empty database of DATABASE_URL.

    A database with any table in it is refused. The backup's checksum is checked
    first and every table's row count afterwards, against FILE.manifest.json.
    PostgreSQL: pg_restore --single-transaction (a failed restore leaves the database
    empty), without owners or privileges (the restoring user owns everything).
    """
    from storage.backup import BackupError, restore

    settings = settings_or_exit()
    try:
        result = run(restore(settings.database_url, file, checked=not unchecked), settings)
    except BackupError as exc:
        fail(str(exc), exc.status)
    rows = sum(result.counts.values())
    click.echo(
        f"restored {file} into {settings.database_display()} in {result.seconds:.1f} s: "
        f"{len(result.counts)} tables, {rows} rows"
    )
    if result.manifest is None:
        click.echo("row counts not checked (--unchecked)")
        return
    if result.differences:
        for line in result.differences:
            click.echo(f"  {line}", err=True)
        fail(
            f"row counts differ from the manifest of {file} in {len(result.differences)} "
            "table(s) (listed above): do not serve from this database"
        )
    click.echo(
        f"row counts match the manifest in all {len(result.counts)} tables "
        f"(backup of {result.manifest.created_at}, revision {result.manifest.revision or '-'})"
    )
