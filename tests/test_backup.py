"""``order-menu db backup`` and ``db restore``: a restore rehearsal under load, on
both databases, and the refusals (a database that is not empty, a damaged backup),
and ``--keep`` rotation, which deletes only old backups of ours."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.cli import main
from storage import models
from storage.engine import create_engine
from tests.conftest import PG_URL, _pg_admin
from tests.servers import post, serve_env, serving

CODE = re.compile(r"订单号：([2-9A-Z]{6})")


def order_menu(db_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command, as cron runs it: a process of its own with DATABASE_URL
    (for the backup under load: another process than the server's)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=serve_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def invoke(db_url: str, *args: str) -> Result:
    """The command in this process (a second less than a process of its own)."""
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": db_url})


@pytest.fixture(scope="session")
def restore_database() -> Iterator[str]:
    """A PostgreSQL database of this test session to restore into (dropping one per
    test cost seconds: DROP DATABASE waits for a checkpoint)."""
    name = f"om_restore_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database with nothing in it: a file that does not exist yet (SQLite), the
    session's restore database with its schema dropped and made anew (PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    url: str = request.getfixturevalue("restore_database")

    async def empty() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    asyncio.run(empty())
    return url


async def order_codes(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return set((await connection.scalars(select(models.Order.code))).all())
    finally:
        await engine.dispose()


async def test_a_backup_taken_under_load_restores_every_acknowledged_order(
    db_url: str, fresh_db_url: str, tmp_path: Path
) -> None:
    acknowledged: list[tuple[float, str]] = []  # (when the reply came, order code)
    stop, enough = asyncio.Event(), asyncio.Event()

    async def resident(worker: int, base: str) -> None:
        """Residents one after the other, each placing one order (4 messages)."""
        n = 0
        while not stop.is_set():
            n += 1
            openid, ids = f"o_{worker}_{n}", 9_000_000 + worker * 10_000 + n * 10
            lines = ("水管爆了", "1栋", f"139{worker:02d}{n:06d}", "确认")
            for step, line in enumerate(lines):
                reply = await asyncio.to_thread(post, base, openid, line, ids + step)
            found = CODE.search(reply)
            assert found, reply
            acknowledged.append((time.monotonic(), found[1]))
            if len(acknowledged) >= 6:
                enough.set()

    with serving(db_url, tmp_path) as base:
        traffic = [asyncio.create_task(resident(w, base)) for w in range(4)]
        await asyncio.wait_for(enough.wait(), 30)  # orders in the database already
        started = time.monotonic()
        backup = await asyncio.to_thread(order_menu, db_url, "db", "backup", "b/", cwd=tmp_path)
        during = sum(1 for when, _ in acknowledged if when > started)
        stop.set()
        await asyncio.gather(*traffic)
    assert backup.returncode == 0, backup.stderr
    assert during > 0, "no order was placed while the backup ran"
    (manifest_file,) = (tmp_path / "b").glob("order-menu-*.manifest.json")
    file = manifest_file.with_name(json.loads(manifest_file.read_text())["file"])
    assert file.stat().st_mode & 0o077 == 0  # residents' data: for the owner's eyes only

    restored = await asyncio.to_thread(invoke, fresh_db_url, "db", "restore", str(file))
    assert restored.exit_code == 0, restored.output
    assert "row counts match the manifest in all" in restored.stdout
    before = {code for when, code in acknowledged if when < started}
    missing = before - await order_codes(fresh_db_url)
    assert not missing, f"acknowledged before the backup, not restored: {sorted(missing)}"


def test_a_restore_into_a_database_with_data_is_refused(db_url: str, clean_env: Path) -> None:
    made = invoke(db_url, "db", "backup", "copy.bak")
    assert made.exit_code == 0, made.output
    refused = invoke(db_url, "db", "restore", "copy.bak")
    assert refused.exit_code == 1
    shown = make_url(db_url).render_as_string(hide_password=True)
    assert f"the database {shown} is not empty" in refused.stderr
    assert "create a new one and point DATABASE_URL at it" in refused.stderr


def test_a_damaged_backup_is_refused_and_nothing_is_restored(
    db_url: str, fresh_db_url: str, clean_env: Path
) -> None:
    backup = clean_env / "copy.bak"
    assert invoke(db_url, "db", "backup", str(backup)).exit_code == 0
    whole = backup.read_bytes()
    backup.write_bytes(whole[: len(whole) // 2])  # a copy cut off half-way

    refused = invoke(fresh_db_url, "db", "restore", str(backup))
    assert refused.exit_code == 1
    assert f"{backup}: size is {len(whole) // 2} bytes" in refused.stderr
    assert "truncated or damaged" in refused.stderr
    # Without the manifest's checksum the file's own structure still gives it away.
    unchecked = invoke(fresh_db_url, "db", "restore", str(backup), "--unchecked")
    assert unchecked.exit_code == 1
    assert f"error: {backup}: not a " in unchecked.stderr
    again = invoke(fresh_db_url, "db", "restore", str(backup))
    assert "is not empty" not in again.stderr  # the failed restores left nothing behind


def test_keep_rotation_deletes_only_our_older_backups(clean_env: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{clean_env / 'live.db'}"
    assert invoke(db_url, "db", "upgrade").exit_code == 0
    folder = clean_env / "backups"
    folder.mkdir()
    older = ["order-menu-20240101T030000Z.sqlite3", "order-menu-20240102T030000Z.sqlite3"]
    for name in older:  # two earlier backups of ours, each with its manifest
        (folder / name).write_bytes(b"old")
        (folder / f"{name}.manifest.json").write_text(
            json.dumps(
                {"format": "order-menu-backup/1", "file": name, "engine": "sqlite"}
                | {"database": "-", "created_at": "-", "revision": None, "tool": "-"}
                | {"bytes": 3, "sha256": "-"}
            )
        )
    others = [
        "order-menu-20230101T030000Z.sqlite3",  # our name, but no manifest: not ours
        "order-menu-20230101T030000Z.sqlite3.bak",
        "notes.txt",
        "order-menu-latest.sqlite3",
    ]
    for name in others:
        (folder / name).write_text("keep me")

    made = invoke(db_url, "db", "backup", str(folder), "--keep", "2")
    assert made.exit_code == 0, made.output
    assert f"removed the older backup {folder / older[0]} (--keep 2)" in made.stdout
    left = sorted(p.name for p in folder.iterdir())
    newest = [n for n in left if n.startswith("order-menu-2") and n.endswith("Z.sqlite3")]
    assert newest[-2:] == [older[1], newest[-1]] and newest[-1] > older[1]
    assert older[0] not in left and f"{older[0]}.manifest.json" not in left
    assert set(others) <= set(left)
    assert len(left) == len(others) + 4  # two backups of ours and their manifests

    fixed = invoke(db_url, "db", "backup", "one.db", "--keep", "2")
    assert fixed.exit_code == 2
    assert "--keep: FILE" in fixed.stderr and "one fixed name" in fixed.stderr


FAKE_PG_DUMP = """#!/bin/sh
if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) $FAKE_VERSION"; exit 0; fi
echo "$@" > args.txt
echo "$PGPASSWORD" > password.txt
echo "pg_dump: error: the disk is full" >&2
exit 3
"""


def test_pg_dump_gets_the_password_in_its_environment_and_must_be_recent_enough(
    db_url: str, backend: str, clean_env: Path
) -> None:
    if backend == "sqlite":
        pytest.skip("pg_dump is PostgreSQL's")
    tools = clean_env / "bin"
    tools.mkdir()
    (tools / "pg_dump").write_text(FAKE_PG_DUMP)  # a stand-in that records how it was run
    (tools / "pg_dump").chmod(0o755)
    url = make_url(db_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    env = {"DATABASE_URL": url, "PATH": f"{tools}:{os.environ['PATH']}", "FAKE_VERSION": "99.1"}

    failed = CliRunner().invoke(main, ["db", "backup", "b/"], env=env)
    assert failed.exit_code == 1
    assert "pg_dump failed (exit status 3): pg_dump: error: the disk is full" in failed.stderr
    assert "--format=custom" in (clean_env / "args.txt").read_text()
    assert "s3cret-pw" not in (clean_env / "args.txt").read_text() + failed.output
    assert (clean_env / "password.txt").read_text().strip() == "s3cret-pw"
    assert list((clean_env / "b").iterdir()) == []  # nothing half-made left behind

    old = CliRunner().invoke(main, ["db", "backup", "b/"], env=env | {"FAKE_VERSION": "9.6"})
    assert old.exit_code == 2
    assert "pg_dump is version 9 but the server of postgresql+asyncpg://" in old.stderr
    assert ":***@" in old.stderr and "install postgresql-client-" in old.stderr

    missing = CliRunner().invoke(main, ["db", "backup", "b/"], env=env | {"PATH": str(clean_env)})
    assert missing.exit_code == 2
    assert "pg_dump not found on PATH" in missing.stderr


def test_a_backup_is_owner_only_from_its_first_byte(tmp_path: Path) -> None:
    """The file a backup is written into is created owner-only before sqlite3 or
    pg_dump write a byte (they keep an existing file's mode): a reader cannot open it
    half-way and keep reading residents' data."""
    from storage.backup import _prepare

    target, partial = _prepare(tmp_path / "nightly.db")
    assert partial.exists() and not target.exists()
    assert partial.stat().st_mode & 0o077 == 0
