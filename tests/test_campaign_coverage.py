"""A campaign's coverage per grid, end to end: a household list imported, the campaign
sent by mass send to followers (one of whom lives in a listed household), a grid
worker's visits recorded by chat, a 楼栋群 post ticked on the console; the coverage
page and its export count each household once, whatever reached it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from bot import keys
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.ordering_catalog import write_catalog
from tests.test_broadcasts import follow, send_all
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import say
from tests.test_visits import LIST, cli, worker
from tests.webhook_app import Client, start

fake_wechat = fake_wechat_fixture()


def plain(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


async def test_coverage_counts_each_household_once_whatever_reached_it(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat, tmp_path: Path
) -> None:
    wechat = await start(
        aiohttp_client,
        db_url,
        catalog_path=write_catalog(tmp_path),
        scheduler_interval=60,
        wechat_app_id=fake_wechat.app_id,
        wechat_app_secret=fake_wechat.app_secret,
        wechat_api_base=fake_wechat.base_url,
    )
    listing = tmp_path / "households.csv"
    listing.write_text(LIST, encoding="utf-8")
    await cli(db_url, "households", "import", str(listing), "--community", "testville")
    for openid in ("o_home", "o_away"):
        await follow(wechat, fake_wechat, openid)
    await cli(db_url, "residents", "set", "o_home", "--building", "3栋2单元502")
    out = await cli(
        db_url,
        *("broadcast", "create", "--topic", "反诈", "--title", "反诈提醒"),
        *("--text", "陌生来电说退款，一律挂断。", "--yes"),
    )
    campaign = re.search(r"scheduled: broadcast (\d+)", out)
    assert campaign is not None, out
    await send_all(wechat)
    assert sorted(fake_wechat.mass_lists()[0]) == ["o_away", "o_home"]

    await worker(wechat, db_url, "o_grid")
    for said in ("走访 3栋2单元501 已宣传", "走访 3栋2单元502 已宣传", "走访 3栋2单元601 没人在家"):
        assert "已记下" in await say(wechat, "o_grid", said)

    await add_user(wechat, "staff1", "staff")
    browser = await login(wechat, "staff1")
    try:
        csrf = await csrf_of(browser, "/console/groups")
        added = await browser.post(
            "/console/groups",
            data={"csrf": csrf, "name": "7栋住户群", "grid": "g2", "buildings": "7栋"},
        )
        assert added.status == 200, await added.text()
        async with wechat.client.app[keys.SESSIONMAKER]() as session:
            from storage.repositories import groups

            group = await groups.group_named(session, "testville", "7栋住户群")
        assert group is not None
        ticked = await browser.post(
            f"/console/broadcasts/{campaign[1]}/groups",
            data={"csrf": csrf, "group": str(group.id), "posted": "yes"},
        )
        assert ticked.status == 200

        page = plain(
            await (await browser.get(f"/console/broadcasts/{campaign[1]}/coverage")).text()
        )
        assert "共 6 户，已覆盖 3 户（50%）：公众号 1 户，楼栋群 1 户，入户走访 2 户" in page
        # 第一网格: 5 households; 502 by the account and a visit (once), 501 by a visit;
        # 601 had nobody home; 3栋1单元101 (elderly, alone) heads the list of those left.
        assert "第一网格 5 1 0 2 2（40%） 1 3（1）" in page
        assert "第二网格 1 0 1 0 1（100%） 0 0（0）" in page
        left = page[page.index("第一网格：还没覆盖的 3 户") :]
        assert left.index("3栋1单元101 独居老人") < left.index("3栋2单元601 走访时没人在家")
        assert "公众号发给了 2 位关注者，其中 1 位还不知道住哪一户" in page

        export = await browser.get(f"/console/broadcasts/{campaign[1]}/coverage.csv")
        rows = list(csv.reader(io.StringIO((await export.read()).decode("utf-8-sig"))))
        by_home = {row[1]: row for row in rows[1:]}
        assert rows[0] == [
            "网格",
            "住户",
            "独居老人",
            "备注",
            "公众号",
            "楼栋群",
            "走访",
            "是否覆盖",
        ]
        assert by_home["3栋2单元502"][4:] == ["✓", "", "✓", "已覆盖"]
        assert by_home["7栋1单元101"][4:] == ["", "✓", "", "已覆盖"]
        assert by_home["3栋2单元601"][7] == "走访没人在家"
        assert by_home["3栋1单元101"][2] == "是" and by_home["3栋1单元101"][7] == "未覆盖"
        xlsx = await browser.get(f"/console/broadcasts/{campaign[1]}/coverage.xlsx")
        assert xlsx.status == 200 and (await xlsx.read())[:2] == b"PK"
    finally:
        await browser.close()
