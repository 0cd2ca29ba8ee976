"""PostgreSQL backups: ``pg_dump --format=custom`` and ``pg_restore``, run by the command.

The recipe (docs/operations.md, "Backups"): a REPEATABLE READ transaction exports
its snapshot (``pg_export_snapshot()``), counts every table's rows in it, and
``pg_dump --snapshot`` dumps exactly that snapshot, so the manifest's counts are the
dump's even while orders keep coming in. The password goes to the tools in
``PGPASSWORD`` (their environment), never on a command line or in a log.
A restore runs ``pg_restore --single-transaction``: a failed one leaves the database
as empty as it was.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.backup.manifest import BackupError
from storage.engine import create_engine

USER_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2
"""


def tool(name: str) -> str:
    """The path of ``pg_dump`` / ``pg_restore``; BackupError (status 2) without it."""
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools of the "
            "server's major version (Debian: apt install postgresql-client)",
            status=2,
        )
    return found


async def tool_version(path: str) -> tuple[int, str]:
    """(major, text) of a PostgreSQL client tool, e.g. (15, "15.4")."""
    output = await _run([path, "--version"], {})
    found = re.search(r"(\d+)(?:\.(\d+))?", output)
    if found is None:
        raise BackupError(f"{path} --version: cannot read a version from {output.strip()!r}")
    return int(found[1]), found[0]


async def _server_major(connection: AsyncConnection) -> int:
    number = await connection.scalar(text("SHOW server_version_num"))
    return int(str(number)) // 10000


def check_versions(name: str, tool_major: int, server_major: int, display: str) -> None:
    """A client tool older than the server cannot read it (pg_dump refuses)."""
    if tool_major < server_major:
        raise BackupError(
            f"{name} is version {tool_major} but the server of {display} is "
            f"PostgreSQL {server_major}: install postgresql-client-{server_major} "
            f"and put its bin directory first on PATH",
            status=2,
        )


def client_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """The connection options of the tools (no password) and their environment
    (PGPASSWORD only there)."""
    args: list[str] = []
    host = url.host or url.query.get("host")
    if isinstance(host, str) and host:
        args += ["--host", host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    args += ["--no-password"]  # never wait for a password prompt in a cron job
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = ssl
    return args, env


async def _run(argv: list[str], env: dict[str, str]) -> str:
    """Run a tool to its end; its stdout, or BackupError with its stderr's last lines."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env or None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(
            f"{Path(argv[0]).name} failed (exit status {process.returncode}): "
            + " | ".join(lines[-5:] or ["no message"])
        )
    return stdout.decode(errors="replace")


def _quoted(schema: str, table: str) -> str:
    name = '"' + table.replace('"', '""') + '"'
    return name if schema == "public" else '"' + schema.replace('"', '""') + '".' + name


async def row_counts(connection: AsyncConnection) -> dict[str, int]:
    """Rows per table (``schema.table`` outside ``public``), in the connection's
    current snapshot."""
    counts: dict[str, int] = {}
    for schema, table in (await connection.execute(text(USER_TABLES))).all():
        name = _quoted(schema, table)
        key = table if schema == "public" else f"{schema}.{table}"
        counts[key] = int(await connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)
    return counts


async def _revision(connection: AsyncConnection) -> str | None:
    exists = await connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return None
    found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    return None if found is None else str(found)


@asynccontextmanager
async def _connection(url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def backup(url: str, display: str, target: Path) -> tuple[dict[str, int], str | None, str]:
    """Dump the database to the new file ``target``; its row counts, revision and
    the pg_dump version, all of one snapshot."""
    pg_dump = tool("pg_dump")
    major, version = await tool_version(pg_dump)
    parsed = make_url(url)
    args, env = client_args(parsed)
    async with _connection(url) as connection:
        connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            await connection.execute(text("SET TRANSACTION READ ONLY"))
            check_versions("pg_dump", major, await _server_major(connection), display)
            snapshot = await connection.scalar(text("SELECT pg_export_snapshot()"))
            counts = await row_counts(connection)
            revision = await _revision(connection)
            # The snapshot lives as long as this transaction: pg_dump runs inside it.
            await _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    *args,
                    "--dbname",
                    str(parsed.database),
                ],
                env,
            )
    return counts, revision, f"pg_dump {version}"


async def existing_tables(url: str) -> dict[str, int]:
    """Rows per table of the target database (empty: nothing there)."""
    async with _connection(url) as connection:
        return await row_counts(connection)


async def restore(url: str, display: str, source: Path) -> dict[str, int]:
    """Load the archive ``source`` into the (empty) database; its row counts after."""
    pg_restore = tool("pg_restore")
    major, _ = await tool_version(pg_restore)
    async with _connection(url) as connection:
        check_versions("pg_restore", major, await _server_major(connection), display)
    try:
        await _run([pg_restore, "--list", str(source)], {})
    except BackupError as exc:
        raise BackupError(f"{source}: not a readable pg_dump archive ({exc})") from None
    parsed = make_url(url)
    args, env = client_args(parsed)
    await _run(
        [
            pg_restore,
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            *args,
            "--dbname",
            str(parsed.database),
            str(source),
        ],
        env,
    )
    async with _connection(url) as connection:
        return await row_counts(connection)
