"""The console a community worker uses: counts on the front, overdue orders marked
on the working-time calendar, page sizes, the resident's name (asked once) and grid
on every row, photos and places on the order page and in the portal, and the board
exported as CSV and Excel in the viewer's scope."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import aiohttp
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot import keys
from storage import models
from storage.order_status import OrderStatus
from tests.test_console import add_user, login, make_site
from tests.test_console_board import add_orders
from tests.test_ordering import CODE, move, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

COUNT = re.compile(r'class="count count-(\w+)[^"]*"><b>(\d+)</b>')
ROW = re.compile(r"<tr( class=\"overdue\")?><td><a href=\"/console/orders/([A-Z0-9]+)\">")
HEADER = ["订单号", "服务", "承办单位", "状态", "居民称呼", "电话", "网格", "地址", "下单时间"]


async def page(browser: aiohttp.ClientSession, path: str) -> str:
    reply = await browser.get(path)
    assert reply.status == 200, await reply.text()
    return await reply.text()


def counts(html: str) -> dict[str, int]:
    return {key: int(n) for key, n in COUNT.findall(html)}


def rows(html: str) -> dict[str, bool]:
    """The board's order codes, each with whether it is marked overdue."""
    return {code: bool(late) for late, code in ROW.findall(html)}


async def dispatched_days_ago(wechat: WeChatServer, code: str, days: int) -> None:
    """The order was dispatched ``days`` ago (its unit's promise long run out)."""
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        order_id = await session.scalar(select(models.Order.id).where(models.Order.code == code))
        await session.execute(
            update(models.OrderEvent)
            .where(models.OrderEvent.order_id == order_id)
            .values(at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
        )


async def test_the_front_counts_and_marks_overdue_orders_in_the_viewers_scope(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat, repair, secret = await make_site(db_url, aiohttp_client, tmp_path)
    staff = await login(wechat, "staff1")
    front = await page(staff, "/console")
    # The confidential report is neither listed nor counted for community staff.
    assert counts(front) == {
        "new": 1,
        "overdue": 0,
        "undelivered": counts(front)["undelivered"],
        "followup": 0,
        "reopened": 0,
    }
    assert rows(front) == {repair: False}

    # Dispatched ten days ago: past the promise on any working-time calendar.
    await dispatched_days_ago(wechat, repair, 10)
    await dispatched_days_ago(wechat, secret, 10)
    front = await page(staff, "/console")
    assert counts(front)["overdue"] == 1 and rows(front) == {repair: True}
    assert rows(await page(staff, "/console?show=overdue")) == {repair: True}
    order = await page(staff, f"/console/orders/{repair}")
    assert "已超过承诺时间" in order and "接单）" in order
    # The unit of the report sees it overdue in its portal; the repair's unit its own.
    discipline = await login(wechat, "discipline1")
    assert rows(await page(discipline, "/portal")) == {secret: True}
    property_ = await login(wechat, "property1")
    assert rows(await page(property_, "/portal")) == {repair: True}

    # Accepted just now (a fresh dispatch): no longer overdue.
    await move(wechat, repair, OrderStatus.ACCEPTED, actor="unit:property1")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        order_id = await session.scalar(select(models.Order.id).where(models.Order.code == repair))
        await session.execute(
            update(models.OrderEvent)
            .where(
                models.OrderEvent.order_id == order_id, models.OrderEvent.to_status == "dispatched"
            )
            .values(at=dt.datetime.now(dt.UTC))
        )
    front = await page(staff, "/console")
    assert counts(front)["overdue"] == 0 and counts(front)["new"] == 0

    # Completed: waiting for the resident's 回访; 没解决 reopens it.
    await move(wechat, repair, OrderStatus.IN_SERVICE, actor="unit:property1")
    await move(wechat, repair, OrderStatus.COMPLETED, actor="unit:property1")
    front = await page(staff, "/console")
    assert counts(front)["followup"] == 1
    assert rows(await page(staff, "/console?show=followup")) == {repair: False}
    await move(wechat, repair, OrderStatus.REOPENED, actor="resident")
    front = await page(staff, "/console")
    assert counts(front)["followup"] == 0 and counts(front)["reopened"] == 1
    assert rows(await page(staff, "/console?status=reopened")) == {repair: False}
    for browser in (staff, discipline, property_):
        await browser.close()


async def test_page_sizes_keep_the_filters(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    from tests.ordering_catalog import write_catalog

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    await add_orders(wechat, dt.date.today(), 45, prefix="PG", grid="g2")
    staff = await login(wechat, "staff1")
    first = await page(staff, "/console?grid=g2&size=20")
    assert "共 45 单" in first and "第 1/3 页" in first and len(rows(first)) == 20
    following = re.search(r'<a href="([^"]+)" rel="next">下一页</a>', first)
    assert following is not None and "size=20" in following[1] and "grid=g2" in following[1]
    last = await page(staff, "/console?grid=g2&size=20&page=3")
    assert len(rows(last)) == 5 and "上一页" in last
    # A size not offered is the default (50 a page).
    assert len(rows(await page(staff, "/console?size=7"))) == 45
    await staff.close()


def ranged_catalog(tmp_path: Path) -> Path:
    """The test catalog with grids named as the demo names them: ranges of buildings."""
    from tests.ordering_catalog import write_catalog

    path = write_catalog(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace("areas: [1栋, 2栋, 3栋]", "areas: [测试小区1-6栋]")
    text = text.replace("areas: [7栋, 8栋]", "areas: [测试小区7-12栋]")
    path.write_text(text, encoding="utf-8")
    return path


async def test_the_name_is_asked_once_and_name_and_grid_show_on_every_order(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=ranged_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    summary = await say(wechat, "o_wang", "水管爆了", "3栋2单元", "13899990001")
    assert "请核对" in summary and "称呼" in summary, summary
    again = await say(wechat, "o_wang", "王阿姨")
    assert "称呼：王阿姨" in again and "确认" in again, again
    first = CODE.search(await say(wechat, "o_wang", "确认"))
    assert first is not None
    # The next order is not asked; an item with no building question takes her grid.
    summary = await say(wechat, "o_wang", "楼道里堆了杂物", "纸箱")
    assert "请核对" in summary and "称呼" not in summary, summary
    second = CODE.search(await say(wechat, "o_wang", "确认"))
    assert second is not None
    # A resident who goes on without a name is not asked again, and shows as 未留姓名.
    summary = await say(wechat, "o_li", "水管爆了", "9栋", "13899990002")
    assert "称呼" in summary
    third = CODE.search(await say(wechat, "o_li", "确认"))
    assert third is not None
    assert "称呼" not in await say(wechat, "o_li", "水管又爆了", "9栋")

    staff = await login(wechat, "staff1")
    board = await page(staff, "/console")
    for code, name, grid in (
        (first[1], "王阿姨", "第一网格"),
        (second[1], "王阿姨", "第一网格"),
        (third[1], "未留姓名", "第二网格"),
    ):
        row = re.search(rf"{code}</a>.*?</tr>", board, re.S)
        assert row is not None
        assert f'<td class="resident">{name}</td>' in row[0], row[0]
        assert f'<td class="grid">{grid}</td>' in row[0], row[0]
        order = await page(staff, f"/console/orders/{code}")
        assert f'<span class="resident">{name}</span>' in order
        assert f'<span class="grid">{grid}</span>' in order
    assert set(rows(await page(staff, "/console?grid=g1"))) == {first[1], second[1]}
    await staff.close()


async def test_the_export_has_chinese_headers_and_the_viewers_orders_only(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat, repair, secret = await make_site(db_url, aiohttp_client, tmp_path)

    async def exported(username: str, path: str) -> tuple[list[str], list[list[str]]]:
        browser = await login(wechat, username)
        reply = await browser.get(path)
        assert reply.status == 200, await reply.text()
        body = await reply.read()
        await browser.close()
        if path.split("?")[0].endswith(".xlsx"):
            sheet = load_workbook(io.BytesIO(body)).active
            assert sheet is not None
            table = [
                ["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)
            ]
        else:
            table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        return table[0], table[1:]

    for kind in ("csv", "xlsx"):
        header, lines = await exported("staff1", f"/console/export.{kind}")
        assert header[: len(HEADER)] == HEADER
        assert [line[0] for line in lines] == [repair]  # no confidential report for staff
        grid = header.index("网格")
        assert lines[0][1] == "水电维修" and lines[0][grid] == "第一网格"
        assert not any(re.fullmatch(r"[a-z_:-]+", cell) for cell in header + lines[0] if cell)
        header, lines = await exported("admin1", f"/console/export.{kind}")
        assert sorted(line[0] for line in lines) == sorted([repair, secret])
        header, lines = await exported("discipline1", f"/portal/export.{kind}")
        assert [line[0] for line in lines] == [secret]
        header, lines = await exported("property1", f"/portal/export.{kind}")
        assert [line[0] for line in lines] == [repair]
        header, lines = await exported("lawyer1", f"/portal/export.{kind}")
        assert lines == []
    # The board's filters apply: nothing in another grid.
    header, lines = await exported("staff1", "/console/export.csv?grid=g2")
    assert lines == []
    # A unit member cannot use the staff export, nor staff the unit's.
    unit = await login(wechat, "property1")
    assert (await unit.get("/console/export.csv", allow_redirects=False)).status in (302, 403)
    await unit.close()


async def test_a_photo_and_place_sent_through_the_webhook_show_on_the_order_and_in_the_portal(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    from tests.ordering_catalog import write_catalog

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    await add_user(wechat, "staff1", "staff")
    await add_user(wechat, "property1", "unit", "property")
    asked = await say(wechat, "o_lin", "路灯坏了")
    if "是不是这一项" in asked:
        await say(wechat, "o_lin", "是")
    during = wechat.xml(
        "o_lin",
        "image",
        PicUrl="https://mmbiz.qpic.cn/mmbiz_jpg/lamp.jpg",
        MediaId="m1",
        MsgId=wechat.new_msg_id(),
    )
    assert "会一起交给办理的单位" in (await wechat.post(during)).text
    await say(wechat, "o_lin", "3栋门口", "13855556666")
    placed = CODE.search(await say(wechat, "o_lin", "确认"))
    assert placed is not None
    code = placed[1]
    after = wechat.xml(
        "o_lin",
        "location",
        Location_X="25.27",
        Location_Y="110.29",
        Scale="15",
        Label="解东路3号",
        MsgId=wechat.new_msg_id(),
    )
    assert "已经附到订单" in (await wechat.post(after)).text

    staff = await login(wechat, "staff1")
    board = await page(staff, "/console")
    assert "有照片/位置" in board
    unit = await login(wechat, "property1")
    assert code in await page(unit, "/portal")
    for browser in (staff, unit):
        order = await page(browser, f"/console/orders/{code}")
        assert '<img src="https://mmbiz.qpic.cn/mmbiz_jpg/lamp.jpg"' in order
        assert "位置：解东路3号" in order and "北纬 25.27000，东经 110.29000" in order
        assert "https://uri.amap.com/marker?position=110.29,25.27" in order.replace("%2C", ",")
        assert "<script" not in order
        await browser.close()
