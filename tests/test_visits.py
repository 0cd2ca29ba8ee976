"""Door-to-door visits (下户走访) through the real webhook and console: a household
list imported with the CLI, a grid worker bound with a code from ``order-menu grid
invite``, visits recorded by chat (by address, or chosen from the list), follow-ups
listed and closed by chat and on the console, and what the coverage page will count."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import event, func, select

from bot import keys
from bot.cli import main
from storage import models
from storage.models import utcnow
from storage.repositories import households as homes
from storage.repositories import visits as repo
from tests.ordering_catalog import write_catalog
from tests.test_console import CSRF, add_user, login
from tests.test_ordering import say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

DAY = dt.timedelta(days=1)
INVITE = re.compile(r"绑定 ([2-9A-Z]{10})")
LIST = """网格,楼栋,单元,房号,备注
第一网格,3栋,2,501,
第一网格,3栋,2,502,
第一网格,3栋,2,601,
第一网格,1栋,1,101,
第一网格,3栋,1,101,独居老人 腿脚不便
第二网格,7栋,1,101,
"""


async def cli(db_url: str, *args: str) -> str:
    """``order-menu ARGS``, as staff run it (in a thread: it has its own loop)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, main, list(args), env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def worker(wechat: WeChatServer, db_url: str, openid: str, grid: str = "g1") -> None:
    output = await cli(db_url, "grid", "invite", "--grid", grid, "--community", "testville")
    code = INVITE.search(output)
    assert code is not None, output
    assert "绑定成功" in await say(wechat, openid, f"绑定 {code[1]}")


async def site(
    db_url: str, aiohttp_client: Client, tmp_path: Path, text: str = LIST
) -> WeChatServer:
    """The service with the grids' household list imported and an anti-fraud campaign."""
    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    listing = tmp_path / "households.csv"
    listing.write_text(text, encoding="utf-8")
    await cli(db_url, "households", "import", str(listing), "--community", "testville")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        campaign = models.Broadcast(
            community_id="testville", topic="anti-fraud", title="反诈提醒", text="陌生来电要当心"
        )
        session.add(campaign)
        await session.flush()
        session.add(models.BroadcastRun(broadcast_id=campaign.id, due_at=utcnow() - DAY))
    return wechat


async def campaign_id(wechat: WeChatServer) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        found = await session.scalar(select(models.Broadcast.id))
        assert found is not None
        return int(found)


async def household_ids(wechat: WeChatServer, *labels: str) -> set[int]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        found = {
            label: await homes.household_for_address(session, "testville", label)
            for label in labels
        }
    assert all(found.values()), found
    return {h.id for h in found.values() if h is not None}


async def test_a_grid_worker_records_visits_by_chat(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await site(db_url, aiohttp_client, tmp_path)
    refused = await say(wechat, "o_resident", "走访 3栋2单元501 已宣传")
    assert "网格员" in refused and "绑定" in refused
    await worker(wechat, db_url, "o_worker")

    reached = await say(wechat, "o_worker", "走访 3栋2单元501 已宣传")
    assert reached == "已记下：3栋2单元501 已宣传（反诈）。辛苦了！"
    assert "没人在家（反诈）" in await say(wechat, "o_worker", "走访 三栋二单元五零二 家里没人")
    follow = await say(wechat, "o_worker", "走访3-2-601需跟进：独居老人要帮忙买药")
    assert "需跟进（反诈）：独居老人要帮忙买药" in follow and "跟进待办" in follow

    # WeChat sends a message again when the reply is slow: it is recorded once.
    retried = wechat.new_msg_id()
    for _ in range(2):
        reply = await wechat.text("o_worker", "走访 1栋1单元101 已宣传", msg_id=retried)
        assert "已记下：1栋1单元101 已宣传" in reply.text

    assert "属于第二网格" in await say(wechat, "o_worker", "走访 7栋1单元101 已宣传")
    assert "名单里没有3栋9单元901" in await say(wechat, "o_worker", "走访 3栋9单元901 已宣传")
    assert "没看懂" in await say(wechat, "o_worker", "走访 三楼那家 已宣传")

    # Without an outcome the bot asks for one.
    assert "1. 已宣传" in await say(wechat, "o_worker", "走访 3栋1单元101")
    assert "已记下：3栋1单元101 没人在家" in await say(wechat, "o_worker", "2")

    # The follow-up, by chat: listed, then closed.
    todo = await say(wechat, "o_worker", "走访待办")
    assert "1. 3栋2单元601：独居老人要帮忙买药" in todo
    assert "已办完" in await say(wechat, "o_worker", "跟进完成 1")
    assert "没有要跟进" in await say(wechat, "o_worker", "走访待办")

    # What the coverage page counts.
    campaign = await campaign_id(wechat)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        visits = await session.scalar(select(func.count()).select_from(models.HouseholdVisit))
        reached_ids = await repo.reached_by_visit(session, "testville", campaign)
        away_ids = await repo.nobody_home_only(session, "testville", campaign)
    assert visits == 5
    assert reached_ids == await household_ids(wechat, "3栋2单元501", "3栋2单元601", "1栋1单元101")
    assert away_ids == await household_ids(wechat, "3栋2单元502", "3栋1单元101")


async def test_choosing_households_from_the_list(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    rooms = "\n".join(f"第一网格,2栋,1,{n}01," for n in range(1, 13))
    wechat = await site(db_url, aiohttp_client, tmp_path, LIST + rooms + "\n")
    await worker(wechat, db_url, "o_worker")
    first = await say(wechat, "o_worker", "走访")
    lines = first.splitlines()
    assert "还没走访到的住户（反诈），共17户" in lines[0]
    assert lines[1] == "1. 3栋1单元101（独居老人）"  # elderly living alone first
    assert lines[2] == "2. 1栋1单元101" and "更多" in first
    second = await say(wechat, "o_worker", "更多")
    assert "11. " in second and "1. 3栋1单元101" not in second

    assert "1. 已宣传" in await say(wechat, "o_worker", "1")
    assert "3栋1单元101 需跟进（反诈）：楼道灯坏了" in await say(wechat, "o_worker", "3 楼道灯坏了")
    assert "没人在家" in await say(wechat, "o_worker", "2 没人在家")
    assert "请回复名单上的序号（1到17）" in await say(wechat, "o_worker", "40")

    again = await say(wechat, "o_worker", "走访")
    assert "共16户" in again and "3栋1单元101" not in again  # reached; nobody home stays
    assert "1栋1单元101" in again
    # Anything else leaves the list and is answered as usual.
    assert "好的，先不记了" in await say(wechat, "o_worker", "取消")


async def test_the_console_shows_follow_ups_and_staff_close_them(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await site(db_url, aiohttp_client, tmp_path)
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "lawyer1", "unit", "law")
    await worker(wechat, db_url, "o_worker")
    await say(wechat, "o_worker", "走访 3栋2单元601 需跟进 屋顶漏水")

    lawyer = await login(wechat, "lawyer1")
    staff = await login(wechat, "staff1")
    try:
        assert (await lawyer.get("/console/visits", allow_redirects=False)).status == 403
        page = await (await staff.get("/console/visits")).text()
        assert "3栋2单元601" in page and "屋顶漏水" in page and "标记办完" in page
        assert "住户 5 户，其中独居老人 1 户" in page
        csrf = CSRF.search(page)
        assert csrf is not None
        task = re.search(r"/console/visits/tasks/(\d+)/done", page)
        assert task is not None
        done = await staff.post(task[0], data={"csrf": csrf[1]}, allow_redirects=False)
        assert done.status == 302
        page = await (await staff.get("/console/visits")).text()
        assert "标记办完" not in page and "已办完" in page

        # A grid worker's code from the console binds like the CLI's.
        invited = await staff.post("/console/visits/invite", data={"csrf": csrf[1], "grid": "g2"})
        code = INVITE.search(await invited.text())
        assert code is not None
        assert "第二网格的网格员" in await say(wechat, "o_other", f"绑定 {code[1]}")
    finally:
        await lawyer.close()
        await staff.close()


async def test_the_console_counts_each_grid_s_households_without_loading_them(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """/console/visits counts households per grid in the database: a community of
    100,000 households took 3 s when every one was loaded to be counted."""
    rooms = [
        f"第一网格,2栋,{1 + n // 100},{1 + n % 100:03d},{'独居' if n % 7 == 0 else ''}"
        for n in range(700)
    ]
    wechat = await site(db_url, aiohttp_client, tmp_path, LIST + "\n".join(rooms) + "\n")
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    loaded: list[object] = []

    def counted(target: object, context: object) -> None:
        loaded.append(target)

    event.listen(models.Household, "load", counted)
    try:
        page = await (await staff.get("/console/visits")).text()
    finally:
        event.remove(models.Household, "load", counted)
        await staff.close()
    assert "住户 705 户，其中独居老人 101 户" in page  # 第一网格: 5 + 700, 1 + 100
    assert "住户 1 户，其中独居老人 0 户" in page  # 第二网格
    assert loaded == []


async def test_visits_count_for_the_campaign_that_went_out_last(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """A visit belongs to the campaign whose latest sending is the newest of the last
    30 days: not one merely scheduled for next week, and a weekly campaign created two
    months ago still counts (anti-fraud went out yesterday, to the whole community)."""
    wechat = await site(db_url, aiohttp_client, tmp_path)
    now = utcnow()
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        weekly = models.Broadcast(
            community_id="testville",
            topic="fire",
            title="消防安全周周讲",
            text="楼道不要堆放杂物",
            grid_key="g1",
            cron="0 10 * * FRI",
            created_at=now - 60 * DAY,
        )
        next_week = models.Broadcast(
            community_id="testville",
            topic="drowning",
            title="防溺水",
            text="暑假到了",
            send_at=now + 7 * DAY,
            created_at=now,
        )
        session.add_all([weekly, next_week])
        await session.flush()
        session.add_all(
            [
                models.BroadcastRun(broadcast_id=weekly.id, due_at=now - 63 * DAY),
                models.BroadcastRun(broadcast_id=weekly.id, due_at=now - 2 * dt.timedelta(hours=1)),
                models.BroadcastRun(broadcast_id=next_week.id, due_at=now + 7 * DAY),
            ]
        )
    await worker(wechat, db_url, "o_g1", "g1")
    await worker(wechat, db_url, "o_g2", "g2")
    assert "已宣传（消防安全）" in await say(wechat, "o_g1", "走访 3栋2单元501 已宣传")
    assert "已宣传（反诈）" in await say(wechat, "o_g2", "走访 7栋1单元101 已宣传")
    assert "还没走访到的住户（消防安全）" in await say(wechat, "o_g1", "走访")


async def test_follow_up_numbers_stay_those_the_worker_was_shown(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """跟进完成 2 closes the second follow-up of the 走访待办 list the worker read, even
    when staff closed the first on the console in between."""
    wechat = await site(db_url, aiohttp_client, tmp_path)
    await add_user(wechat, "staff1", "staff")
    await worker(wechat, db_url, "o_worker")
    await say(wechat, "o_worker", "走访 3栋2单元601 需跟进 屋顶漏水")
    await say(wechat, "o_worker", "走访 3栋2单元502 需跟进 要办老年卡")
    await say(wechat, "o_worker", "走访 1栋1单元101 需跟进 门锁坏了")
    todo = await say(wechat, "o_worker", "走访待办")
    assert "1. 3栋2单元601：屋顶漏水" in todo and "2. 3栋2单元502：要办老年卡" in todo

    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get("/console/visits")).text()
        csrf = CSRF.search(page)
        first = re.search(r"/console/visits/tasks/(\d+)/done", page)
        assert csrf is not None and first is not None
        await staff.post(first[0], data={"csrf": csrf[1]}, allow_redirects=False)
    finally:
        await staff.close()

    done = await say(wechat, "o_worker", "跟进完成 2")
    assert "3栋2单元502的跟进已办完" in done and "还有1件" in done
    assert "3栋2单元601" in await say(wechat, "o_worker", "跟进完成 1")  # already done
    assert "走访待办" in await say(wechat, "o_worker", "跟进完成 9")
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        still_open = await repo.tasks(session, "testville", open_only=True)
    assert [t.household for t in still_open] == ["1栋1单元101"]

    # Once the list is gone (another message), the worker is asked to look again.
    await say(wechat, "o_worker", "你好")
    again = await say(wechat, "o_worker", "跟进完成 3")
    assert "请先发“走访待办”" in again
    assert len((await say(wechat, "o_worker", "走访待办")).splitlines()) == 3


async def test_staff_unbind_a_grid_worker_who_left(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """A grid worker who leaves is unbound on /console/visits: the grid's list (独居老人,
    notes) is no longer theirs to read by chat. The page lists each grid's workers by
    when they were bound and last visited, never by their WeChat ids."""
    wechat = await site(db_url, aiohttp_client, tmp_path)
    await add_user(wechat, "staff1", "staff")
    await worker(wechat, db_url, "o_leaving")
    await say(wechat, "o_leaving", "走访 3栋2单元501 已宣传")
    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get("/console/visits")).text()
        assert "已绑定网格员 1 人" in page and "网格员（没有留姓名）" in page
        # Bound today, last visit a moment ago: the row shows both dates.
        assert re.search(r"<td>\d{4}-\d{2}-\d{2}</td><td>\d{2}-\d{2} \d{2}:\d{2}</td>", page)
        assert "o_leaving" not in page
        csrf = CSRF.search(page)
        unbind = re.search(r"/console/visits/workers/\d+/unbind", page)
        assert csrf is not None and unbind is not None
        forged = await staff.post(unbind[0], data={"csrf": "x"}, allow_redirects=False)
        assert forged.status == 403
        done = await staff.post(unbind[0], data={"csrf": csrf[1]}, allow_redirects=False)
        assert done.status == 302
        page = await (await staff.get("/console/visits")).text()
        assert "已绑定网格员 0 人" in page and "解除绑定" not in page
    finally:
        await staff.close()

    assert "这个命令是给网格员用的" in await say(wechat, "o_leaving", "走访")
    assert "这个命令是给网格员用的" in await say(wechat, "o_leaving", "走访待办")
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        logged = await session.scalar(
            select(models.AuditEntry).where(models.AuditEntry.action == "grid.unbind")
        )
    assert logged is not None and logged.actor == "staff1" and "第一网格" in logged.target
    # A new code binds them again.
    await worker(wechat, db_url, "o_leaving")
    assert "还没走访到的住户" in await say(wechat, "o_leaving", "走访")
