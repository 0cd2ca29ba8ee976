"""Unmet needs are stored with their text, once per inbound message (both databases)."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from catalog.loader import load_catalog
from catalog.matcher import Matcher
from storage.models import UnmetNeed
from storage.repositories.catalog import import_catalog
from storage.repositories.needs import list_unmet_needs, record_unmet_need
from storage.repositories.privacy import blank_texts_of
from tests.conftest import QINGSHIWAN


async def test_unmet_needs_are_kept_once_per_message(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    catalog = load_catalog(QINGSHIWAN)
    matcher = Matcher(catalog)
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="test")

    result = matcher.match("你们社区有教钢琴的老师吗，孩子想学琴")
    assert result.decision == "none"
    for _ in range(3):  # WeChat delivers the same message up to three times
        async with sessionmaker.begin() as session:
            await record_unmet_need(
                session,
                community_id=catalog.community_id,
                result=result,
                catalog_version=catalog.version,
                openid="o-resident",
                message_key="msg:1001",
            )
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(UnmetNeed)) == 1
        [need] = await list_unmet_needs(session, community_id="qingshiwan")
    assert need.text == "你们社区有教钢琴的老师吗，孩子想学琴"
    assert need.openid == "o-resident"


def test_needs_list_cli_on_an_empty_database(db_url: str) -> None:
    result = CliRunner().invoke(main, ["needs", "list"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0 and "no unmet needs recorded" in result.output


async def test_an_erased_need_is_no_longer_listed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    catalog = load_catalog(QINGSHIWAN)
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="test")
        await record_unmet_need(
            session,
            community_id=catalog.community_id,
            result=Matcher(catalog).match("你们社区有教钢琴的老师吗"),
            catalog_version=catalog.version,
            openid="o-resident",
            message_key="msg:1002",
        )
        await blank_texts_of(session, catalog.community_id, "o-resident")  # 删除我的信息
    async with sessionmaker() as session:
        assert await list_unmet_needs(session, community_id=catalog.community_id) == []
