"""Test fixtures: every storage test runs on SQLite and on PostgreSQL.

- ``db_url`` is parametrised over the backends: SQLite always; PostgreSQL when
  ``TEST_DATABASE_URL`` is set (CI sets it). With ``ORDER_MENU_REQUIRE_POSTGRES=1``
  an unreachable PostgreSQL fails the run instead of skipping those tests.
- Each test gets a clean, migrated database: a new SQLite file, or a PostgreSQL
  database of this test session whose tables are emptied before the test.
- ``empty_db_url`` is a database with no tables at all (for migration tests).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from catalog.loader import demo_catalog_path
from storage import migrate
from storage.engine import create_engine, create_sessionmaker
from storage.models import Base

REPO = Path(__file__).resolve().parent.parent

# Catalogs the tests load: all inside the repository, so a fresh clone tests itself.
DEMO_CATALOG = demo_catalog_path()
"""The shipped demo catalog of 解东社区: a realistic full catalog."""
QINGSHIWAN = REPO / "tests" / "catalogs" / "qingshiwan.yaml"
"""A hand-made catalog of another, fictional community (13 units, 27 items), so the
loader, the import and the matcher are not only tested on the catalog the shipped
lexicon was written for."""

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("ORDER_MENU_REQUIRE_POSTGRES", "") not in ("", "0", "false")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """What ``-n auto`` (the README's test command) means: one and a half workers per
    core. About a third of the suite's time is spent waiting (serve processes
    starting, fake peers that answer late on purpose, timeouts the tests are about),
    so one worker per core left the CPU idle that third. Measured on 2 cores: 202 s
    with 2 workers, 175 s with 3; 4 gave 165 s but less room for the tests that bound
    a response time. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when set."""
    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if given:
        return int(given)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (3 * (cores or 1) + 1) // 2)


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError("ORDER_MENU_REQUIRE_POSTGRES is set but TEST_DATABASE_URL is not")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = set(metafunc.fixturenames)
    if names & {"db_url", "empty_db_url"}:
        # A browser test checks pages, whose storage the HTTP tests run on both
        # backends already: it runs on the embedded default alone (about a minute of
        # the suite's budget).
        browser = metafunc.definition.get_closest_marker("browser") is not None
        backends = ["sqlite"] if browser else ["sqlite", "postgresql"]
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and not _pg_available():
        reason = (
            "PostgreSQL not configured (set TEST_DATABASE_URL)"
            if not PG_URL
            else f"PostgreSQL unreachable at {PG_URL}"
        )
        if REQUIRE_PG:
            pytest.fail(reason)
        pytest.skip(reason)
    return name


# --- PostgreSQL: one database per test session ---------------------------------------

_pg_state: dict[str, object] = {}


def _pg_available() -> bool:
    if "available" not in _pg_state:
        if not PG_URL:
            _pg_state["available"] = False
        else:
            try:
                asyncio.run(_pg_admin("SELECT 1"))
                _pg_state["available"] = True
            except Exception as exc:  # any failure to connect means "unavailable"
                _pg_state["available"] = False
                _pg_state["error"] = repr(exc)
    return bool(_pg_state["available"])


async def _pg_admin(*statements: str) -> None:
    """Run statements on the server's own database, outside a transaction."""
    engine = create_engine(PG_URL, pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test session, so runs never see each other."""
    name = f"om_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_migrated: set[str] = set()


async def _clean_pg(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        if url not in _migrated:
            await migrate.upgrade(engine)
            _migrated.add(url)
        async with engine.begin() as conn:
            # DELETE, children first, and sequences restarted, in one round trip: on
            # tables holding a test's few rows it costs a third of a TRUNCATE (which
            # makes new files for every table), and there are hundreds of tests.
            sequences = (
                await conn.execute(
                    text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
                )
            ).scalars()
            statements = [f'DELETE FROM "{t.name}";' for t in reversed(Base.metadata.sorted_tables)]
            statements += [f'ALTER SEQUENCE "{name}" RESTART;' for name in sequences]
            await conn.execute(text("DO $$ BEGIN " + " ".join(statements) + " END $$"))
    finally:
        await engine.dispose()


async def _reset_pg_schema(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    _migrated.discard(url)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A clean database with the current schema."""
    if backend == "sqlite":
        # A copy of one migrated file: migrating afresh for each test cost ~0.2 s each.
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "test.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("pg_database")
    asyncio.run(_clean_pg(url))
    return str(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database with the current schema, made once per test session."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(_migrate(url))
    # The last connection closing folded the write-ahead log into the file itself.
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database without any tables."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    url = request.getfixturevalue("pg_database")
    asyncio.run(_reset_pg_schema(url))
    return str(url)


async def _migrate(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No order-menu settings in the environment, and a working directory without .env."""
    for name in list(os.environ):
        if name.startswith(("WECHAT_", "DATABASE_", "DB_", "CATALOG_", "COMMUNITY_")) or name in (
            "HOST",
            "PORT",
            "PUBLIC_URL",
            "LOG_LEVEL",
        ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
