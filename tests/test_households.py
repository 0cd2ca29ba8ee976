"""Household lists imported from CSV: by the CLI (English problems naming row, column
and value) and the console (Chinese, row by row); UTF-8 with a BOM and GBK alike; the
whole file checked before anything is stored; a list imported again updates its
households instead of adding them twice. And a resident's ``building`` naming a room
finds its household."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, select

from bot import keys
from bot.cli import main
from catalog.household_lists import read_list
from catalog.schema import Grid
from storage import models
from storage.models import utcnow
from storage.repositories import households as homes
from tests.ordering_catalog import write_catalog
from tests.test_console import CSRF, add_user, login
from tests.test_ordering import say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

GOOD = """楼栋,单元,房号,备注,网格
3栋,2,501,独居老人,
三号楼,二单元,502室,,第一网格
7栋,1单元,101,子女在外地,g2
8栋,,201,空巢老人,
"""


async def run_import(db_url: str, path: Path, *extra: str) -> Result:
    args = ["households", "import", str(path), "--community", "testville", *extra]
    return await asyncio.to_thread(CliRunner().invoke, main, args, env={"DATABASE_URL": db_url})


async def stored(wechat: WeChatServer) -> list[tuple[str, str, str, bool, bool]]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(select(models.Household).order_by(models.Household.id))
        return [
            (h.address_key, h.grid_key, h.notes, h.elderly_alone, h.retired_at is None)
            for h in rows
        ]


async def test_importing_a_list_with_the_cli(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    listing = tmp_path / "list.csv"
    listing.write_bytes(GOOD.encode("gbk"))  # as Excel in China saves it
    done = await run_import(db_url, listing)
    assert done.exit_code == 0, done.output
    assert "4 added, 0 updated" in done.output
    assert await stored(wechat) == [
        ("3-2-501", "g1", "独居老人", True, True),
        ("3-2-502", "g1", "", False, True),
        ("7-1-101", "g2", "子女在外地", False, True),
        ("8--201", "g2", "空巢老人", True, True),
    ]

    # Again, as UTF-8 with a BOM, one note changed and one household gone.
    changed = GOOD.replace("子女在外地", "女儿常来").replace("8栋,,201,空巢老人,\n", "")
    listing.write_bytes(changed.encode("utf-8-sig"))
    again = await run_import(db_url, listing, "--retire-missing")
    assert again.exit_code == 0, again.output
    assert "1 updated, 2 unchanged, 1 retired" in again.output
    households = await stored(wechat)
    assert len(households) == 4
    assert households[2][2] == "女儿常来" and households[3][4] is False

    # A bad row: nothing of the file is stored, and the operator is told where.
    bad = changed + "9栋,1,101,,\n3栋,2单元,501号,,\n3栋,x,601,,\n"
    listing.write_text(bad.replace("女儿常来", "新的备注"), encoding="utf-8")
    refused = await run_import(db_url, listing)
    assert refused.exit_code == 1
    assert "row 5, column grid: is empty, and no grid's areas hold the building 9栋" in (
        refused.output
    )
    assert "row 6, column room: '3栋2单元501' repeats the address of row 2" in refused.output
    assert "row 7, column unit: 'x' is not an address part" in refused.output
    assert "nothing was imported" in refused.output
    assert (await stored(wechat))[2][2] == "女儿常来"


async def test_uploading_a_list_on_the_console(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get("/console/visits")).text()
        csrf = CSRF.search(page)
        assert csrf is not None

        async def upload(data: bytes) -> tuple[int, str]:
            form = aiohttp.FormData({"csrf": csrf[1]})
            form.add_field("file", data, filename="住户名单.csv", content_type="text/csv")
            reply = await staff.post("/console/visits/households", data=form)
            return reply.status, await reply.text()

        status, page = await upload((GOOD + "9栋,1,101,,\n3栋,2,五楼,,\n").encode("gbk"))
        assert status == 400
        assert "第6行“网格”没有填写，也看不出9栋属于哪个网格" in page
        assert "第7行“房号”“五楼”看不懂" in page
        assert await stored(wechat) == []
        status, page = await upload(GOOD.encode("gbk"))
        assert status == 200 and "导入了4户：新增4户" in page
        status, page = await upload("姓名,电话\n张三,138\n".encode())
        assert status == 400 and "缺少“楼栋”和“房号”两列" in page
    finally:
        await staff.close()


async def test_a_resident_s_building_finds_their_household(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    listing = tmp_path / "list.csv"
    listing.write_text(GOOD, encoding="utf-8")
    assert (await run_import(db_url, listing)).exit_code == 0
    await say(wechat, "o_a", "你好")
    await say(wechat, "o_b", "你好")
    await say(wechat, "o_c", "你好")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        rows = {
            r.openid: r
            for r in await session.scalars(
                select(models.Resident).where(models.Resident.community_id == "testville")
            )
        }
        rows["o_a"].building = "三栋二单元五零一"
        rows["o_b"].building = "7-1-101室"
        rows["o_c"].building = "3栋"  # names no room
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        found = await homes.households_of_residents(session, "testville")
        one = await homes.household_for_address(session, "testville", "3号楼2单元501室")
        none = await homes.household_for_address(session, "testville", "3栋2单元999")
    assert one is not None and none is None
    assert found[rows["o_a"].id] == one.id
    assert rows["o_b"].id in found and rows["o_c"].id not in found


def test_notes_saying_not_alone_and_the_elderly_column_decide_elderly_alone() -> None:
    """独居老人 from the notes only when they say so (非独居, 不是独居老人 do not), and
    the list's own 独居老人 column, when filled in, wins over the notes."""
    listing = """楼栋,单元,房号,备注,独居老人,网格
1栋,1,101,非独居,,g1
1栋,1,102,不是独居老人，和儿子同住,,g1
1栋,1,103,子女在外地，独居,,g1
1栋,1,104,空巢老人,否,g1
1栋,1,105,,是,g1
1栋,1,106,老伴不在了 独居老人,,g1
1栋,1,107,并非空巢,,g1
"""
    read = read_list(listing.encode(), [Grid(id="g1", name="第一网格")])
    assert read.problems == []
    assert {r.address.room: r.elderly_alone for r in read.rows} == {
        "101": False,
        "102": False,
        "103": True,
        "104": False,
        "105": True,
        "106": True,
        "107": False,
    }


def _many_rooms(count: int) -> bytes:
    rows = [f"{1 + n // 400}栋,{1 + n // 100 % 4},{1 + n % 100:03d}" for n in range(count)]
    return ("楼栋,单元,房号,网格\n" + "\n".join(f"{r},g1" for r in rows) + "\n").encode()


async def test_finding_a_household_by_address_probes_an_index(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """A grid worker's 走访 message finds its household with an index probe, not by
    reading every household of the community (3,000 here; 100,000 in a big one)."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    read = read_list(_many_rooms(3000), [Grid(id="g1", name="第一网格")])
    engine = wechat.client.app[keys.ENGINE]
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await homes.import_rows(session, "testville", read.rows, now=utcnow())
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            found = await homes.household_for_address(
                session, "testville", "解东小区五栋二单元三十一"
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert found is not None and homes.label(found) == "5栋2单元31"
    lookups = [s for s in statements if "FROM households" in s[0]]
    assert lookups
    async with engine.connect() as conn:
        for lookup, parameters in lookups:
            if engine.dialect.name == "postgresql":
                await conn.exec_driver_sql("ANALYZE households")
                explain = f"EXPLAIN {lookup}"
            else:
                explain = f"EXPLAIN QUERY PLAN {lookup}"
            plan = "\n".join(str(r[-1]) for r in await conn.exec_driver_sql(explain, parameters))
            # An index probe on the address, not a read of the community's households.
            assert "Seq Scan" not in plan and "SCAN households" not in plan, plan
            probe = r"Index Cond: .*(_key|\(id =)" if "Index" in plan else r"(key|rowid)=\?\)"
            assert re.search(probe, plan), plan


async def test_residents_households_for_40000_residents_at_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """The coverage page asks for every follower a campaign reached: more ids than
    PostgreSQL takes in one statement (32,767). And the index is usable in a thread."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    listing = tmp_path / "list.csv"
    listing.write_text(GOOD, encoding="utf-8")
    assert (await run_import(db_url, listing)).exit_code == 0
    await say(wechat, "o_a", "你好")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        resident = await session.scalar(select(models.Resident))
        assert resident is not None
        resident.building = "7-1-101室"
    ids = [resident.id, *range(10_000_000, 10_040_000)]
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        found = await homes.households_of_residents(session, "testville", ids)
        index = await homes.address_index(session, "testville")
        one = await homes.household_for_address(session, "testville", "7栋1单元101")
    assert one is not None and found == {resident.id: one.id}
    by_thread = await asyncio.to_thread(
        homes.households_for, index, [(1, "七栋一单元101"), (2, "7栋"), (3, None)]
    )
    assert by_thread == {1: one.id}


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite alone: the upload's size limits are the web server's, not the database's."""
    path = tmp_path / "upload.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def test_a_list_of_20000_households_uploads_and_a_bigger_file_is_refused_in_chinese(
    sqlite_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """A whole community's list (20,000 rows, over 1 MB) is accepted; a file over the
    limit is answered with what to do, in Chinese, not the web server's own error."""
    wechat = await start(aiohttp_client, sqlite_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    rows = [
        f"第一网格,{1 + n // 400}栋,{1 + n // 100 % 4},{1 + n % 100},子女在外地，每周回来看望一次"
        for n in range(20_000)
    ]
    big_list = ("网格,楼栋,单元,房号,备注\n" + "\n".join(rows) + "\n").encode()
    assert len(big_list) > 1024 * 1024
    try:
        csrf = CSRF.search(await (await staff.get("/console/visits")).text())
        assert csrf is not None

        async def upload(data: bytes, token: str) -> tuple[int, str]:
            form = aiohttp.FormData({"csrf": token})
            form.add_field("file", data, filename="住户名单.csv", content_type="text/csv")
            reply = await staff.post("/console/visits/households", data=form)
            return reply.status, await reply.text()

        assert (await upload(b"x", "forged"))[0] == 403
        status, page = await upload(big_list, csrf[1])
        assert status == 200 and "导入了20000户：新增20000户" in page
        status, page = await upload(b"0" * (3 * 1024 * 1024), csrf[1])
        assert status == 413 and "文件太大了，请按网格分开上传" in page
    finally:
        await staff.close()
