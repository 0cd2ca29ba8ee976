"""The CLI shows times in the community's time zone (the catalog's
``community.timezone``), as the README promises; JSON keeps ISO 8601 with the offset.

The catalog here is in Asia/Kathmandu (UTC+05:45): neither UTC nor the default
Asia/Shanghai can show the same minutes by chance."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main
from storage import models
from storage.engine import create_engine, create_sessionmaker
from tests.ordering_catalog import write_catalog

T = TypeVar("T")
ZONE = ZoneInfo("Asia/Kathmandu")
STORED = dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.UTC)
SHOWN = "2026-03-02 02:15"  # STORED in Kathmandu


def invoke(db_url: str, *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    return result


def import_catalog(db_url: str, tmp_path: Path) -> None:
    path = write_catalog(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "timezone: Asia/Shanghai" in text
    path.write_text(text.replace("timezone: Asia/Shanghai", "timezone: Asia/Kathmandu"))
    invoke(db_url, "catalog", "import", str(path))


def in_database(db_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work`` done in one transaction of the test's database."""

    async def go() -> T:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_invite_expiry_is_shown_in_the_communitys_zone(db_url: str, tmp_path: Path) -> None:
    import_catalog(db_url, tmp_path)
    output = invoke(db_url, "units", "invite", "property", "--hours", "5").output

    async def expiry(session: AsyncSession) -> dt.datetime:
        found = await session.scalar(select(models.UnitInvite.expires_at))
        assert found is not None
        return found

    expires = in_database(db_url, expiry)
    local = f"{expires.astimezone(ZONE):%Y-%m-%d %H:%M}"
    assert f"Valid until {local} (Asia/Kathmandu), once." in output, output
    assert f"{expires.astimezone(dt.UTC):%H:%M}" not in output
    assert "UTC" not in output


def test_unmet_needs_are_listed_in_the_communitys_zone(db_url: str, tmp_path: Path) -> None:
    import_catalog(db_url, tmp_path)

    async def record(session: AsyncSession) -> None:
        session.add(
            models.UnmetNeed(
                community_id="testville",
                openid="o_need",
                text="想学太极拳",
                normalized="想学太极拳",
                candidates=[],
                catalog_version="v",
                created_at=STORED,
            )
        )

    in_database(db_url, record)
    text = invoke(db_url, "needs", "list").output
    assert re.search(rf"^{SHOWN}  想学太极拳$", text, re.M), text
    [line] = invoke(db_url, "needs", "list", "--json").output.splitlines()
    moment = dt.datetime.fromisoformat(json.loads(line)["created_at"])
    assert moment.utcoffset() is not None and moment == STORED


def test_orders_are_listed_in_the_communitys_zone(db_url: str, tmp_path: Path) -> None:
    import_catalog(db_url, tmp_path)

    async def place(session: AsyncSession) -> None:
        item = await session.scalar(select(models.Item).where(models.Item.key == "home-repair"))
        assert item is not None
        resident = models.Resident(community_id="testville", openid="o-t", name="王阿姨")
        session.add(resident)
        await session.flush()
        session.add(
            models.Order(
                community_id="testville",
                code="K7TM2Q",
                item_id=item.id,
                unit_id=item.unit_id,
                resident_id=resident.id,
                status="submitted",
                created_at=STORED,
            )
        )

    in_database(db_url, place)
    assert f"K7TM2Q     {SHOWN}" in invoke(db_url, "orders", "list").output
    [line] = invoke(db_url, "orders", "list", "--json").output.splitlines()
    assert dt.datetime.fromisoformat(json.loads(line)["created_at"]) == STORED
