"""删除我的信息 end to end, through the real webhook and the console: the resident's
phone and address leave every table and export, an open order keeps them until it
closes (said plainly), and the evaluation's figures do not move."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import keys
from storage import models
from storage.order_status import OrderStatus
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, csrf_of, login
from tests.test_ordering import CODE, move, say
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

PHONE = "13812345678"
ADDRESS = "3栋2单元"
SECRETS = (PHONE, ADDRESS)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    return write_catalog(tmp_path)


async def where_found(wechat: WeChatServer, *words: str) -> set[tuple[str, object]]:
    """Every row of every table holding one of ``words``: (table, first column)."""
    found = set()
    async with wechat.client.app[keys.ENGINE].connect() as connection:
        for table in models.Base.metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                shown = repr(tuple(row))
                if any(word in shown for word in words):
                    found.add((table.name, row[0]))
    return found


async def place(wechat: WeChatServer, openid: str, *lines: str) -> str:
    found = CODE.search(await say(wechat, openid, *lines))
    assert found is not None
    return found[1]


async def order_id(wechat: WeChatServer, code: str) -> int:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        found = await session.scalar(select(models.Order.id).where(models.Order.code == code))
    assert found is not None
    return found


async def text_of(browser: object, path: str) -> str:
    reply = await browser.get(path)  # type: ignore[attr-defined]
    assert reply.status == 200, path
    return (await reply.read()).decode("utf-8-sig")  # type: ignore[no-any-return]


async def test_erasing_my_information_leaves_no_phone_or_address_and_the_figures_unchanged(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file, evaluation_min_sample=1)
    done = await place(wechat, "o_wang", "楼上老往我家滴水", ADDRESS, PHONE, "确认")
    photo = wechat.xml(
        "o_wang", "image", PicUrl="http://x/leak.jpg", MediaId="m1", MsgId=wechat.new_msg_id()
    )
    await wechat.post(photo)
    for status in (OrderStatus.ACCEPTED, OrderStatus.IN_SERVICE, OrderStatus.COMPLETED):
        await move(wechat, done, status)
    await move(wechat, done, OrderStatus.RATED, actor="resident")
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(
            update(models.Order)
            .where(models.Order.code == done)
            .values(rating=5, rating_comment=f"师傅很好，有事打{PHONE}")
        )
    still_open = await place(wechat, "o_wang", "家里跳闸了", ADDRESS, "确认")
    await say(wechat, "o_wang", f"转人工 我住{ADDRESS}，电话{PHONE}")

    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    figures = await text_of(staff, "/console/evaluation?format=csv")
    assert ADDRESS in await text_of(staff, "/console/export.csv")

    asked = await say(wechat, "o_wang", "删除我的信息")
    assert "确认删除" in asked and still_open in asked and "办完后会自动删除" in asked
    confirm = wechat.text_xml("o_wang", "确认删除")
    erased = (await wechat.post(confirm)).text
    assert "已经删除" in erased and still_open in erased
    assert (await wechat.post(confirm)).text == erased  # a retry: the same answer, once
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        requests = (await session.scalars(select(models.ErasureRequest))).all()
    assert [(r.kept, r.done_at) for r in requests] == [([still_open], None)]

    # Only what the open order needs keeps the phone and the address: the resident's
    # contact details, the order and the unit's notification of it.
    kept_id = await order_id(wechat, still_open)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        notices = set(
            await session.scalars(
                select(models.OutboxMessage.id).where(models.OutboxMessage.order_id == kept_id)
            )
        )
    left = await where_found(wechat, *SECRETS)
    assert {t for t, _ in left} <= {"residents", "orders", "outbox"}, left
    assert {i for t, i in left if t == "orders"} == {kept_id}
    assert {i for t, i in left if t == "outbox"} <= notices
    rows = list(csv.reader(io.StringIO(await text_of(staff, "/console/export.csv"))))
    address, phone = rows[0].index("地址"), rows[0].index("电话")
    assert [(r[address], r[phone]) for r in rows[1:] if r[0] == done] == [("", "")]
    assert await text_of(staff, "/console/evaluation?format=csv") == figures
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        attachment = await session.scalar(select(models.OrderAttachment))
    assert attachment is not None and attachment.data == {}

    # The open order closes: the retention job erases the rest at once.
    await move(wechat, still_open, OrderStatus.CLOSED)
    figures = await text_of(staff, "/console/evaluation?format=csv")
    await wechat.client.app[keys.SCHEDULER].run_now("retention")
    assert await where_found(wechat, *SECRETS) == set()
    assert ADDRESS not in await text_of(staff, "/console/export.csv")
    assert await text_of(staff, "/console/evaluation?format=csv") == figures
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        request = await session.scalar(select(models.ErasureRequest))
        orders = (await session.scalars(select(models.Order))).all()
    assert request is not None and request.done_at is not None
    assert sorted(o.status for o in orders) == ["closed", "rated"]
    assert [o.rating for o in orders if o.code == done] == [5]
    await staff.close()


async def test_staff_erase_a_resident_without_a_smartphone_from_the_order_page(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    token = await csrf_of(staff, "/console")
    placed = await staff.post(
        "/console/proxy",
        data={
            "csrf": token,
            "item": "home-repair",
            "name": "张奶奶",
            "phone": PHONE,
            "consent": "yes",
        },
        allow_redirects=False,
    )
    assert placed.status == 302, await placed.text()
    code = placed.headers["Location"].rsplit("/", 1)[-1]
    await move(wechat, code, OrderStatus.CLOSED)
    page = await text_of(staff, f"/console/orders/{code}")
    assert "删除这位居民的个人信息" in page

    unconfirmed = await staff.post(f"/console/privacy/erase/{code}", data={"csrf": token})
    assert unconfirmed.status == 400 and "核实" in await unconfirmed.text()
    forged = await staff.post(
        f"/console/privacy/erase/{code}", data={"csrf": "x", "confirm": "yes"}
    )
    assert forged.status == 403
    assert await where_found(wechat, PHONE, "张奶奶")

    erased = await staff.post(
        f"/console/privacy/erase/{code}", data={"csrf": token, "confirm": "yes"}
    )
    assert erased.status == 200 and "已删除这位居民的个人信息" in await erased.text()
    assert await where_found(wechat, PHONE, "张奶奶") == set()
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        entries = (
            await session.scalars(
                select(models.AuditEntry).where(models.AuditEntry.action == "erase_resident")
            )
        ).all()
    assert [(e.actor, e.target) for e in entries] == [("staff1", code)]
    await staff.close()


async def settle_outbox(wechat: WeChatServer) -> None:
    """The notifications are delivered (only their text after that is the question)."""
    async with wechat.client.app[keys.SESSIONMAKER].begin() as session:
        await session.execute(update(models.OutboxMessage).values(status="sent"))


async def test_erasure_blanks_notifications_to_staff_quoting_the_residents_own_words(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    code = await place(wechat, "o_gao", "家里跳闸了", "3栋5单元", PHONE, "确认")
    await say(wechat, "o_gao", "师傅还没来，我家老人等着用电")  # feedback on the order
    await move(wechat, code, OrderStatus.CANCELLED)
    await say(wechat, "o_gao", f"我家{ADDRESS}煤气泄漏了")  # an emergency: about no order
    await settle_outbox(wechat)
    assert {t for t, _ in await where_found(wechat, ADDRESS, "老人等着用电")} >= {"outbox"}

    await say(wechat, "o_gao", "删除我的信息", "确认删除")
    assert await where_found(wechat, ADDRESS, "老人等着用电") == set()


async def test_erasure_of_a_resident_who_joined_a_neighbours_report_leaves_nothing_of_theirs(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await place(wechat, "o_a", "楼上老往我家滴水", ADDRESS, PHONE, "确认")
    await say(wechat, "o_b", "家里水管漏水了", "同意", "3栋2单元501")
    photo = wechat.xml(
        "o_b", "image", PicUrl="http://x/b.jpg", MediaId="m1", MsgId=wechat.new_msg_id()
    )
    await wechat.post(photo)
    await say(wechat, "o_b", "算我一个")
    await settle_outbox(wechat)
    assert {t for t, _ in await where_found(wechat, "3栋2单元501", "http://x/b.jpg")} >= {
        "outbox",
        "order_attachments",
    }

    await say(wechat, "o_b", "删除我的信息", "确认删除")
    assert await where_found(wechat, "3栋2单元501", "http://x/b.jpg") == set()


async def test_the_learning_inbox_no_longer_shows_an_erased_residents_words(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await start(aiohttp_client, db_url, catalog_path=catalog_file)
    await say(wechat, "o_gu", "有没有人教广场舞")
    await add_user(wechat, "staff1", "staff")
    staff = await login(wechat, "staff1")
    assert "广场舞" in await text_of(staff, "/console/learning")  # grouped, and cached

    await say(wechat, "o_gu", "删除我的信息", "确认删除")
    assert "广场舞" not in await text_of(staff, "/console/learning")
    await staff.close()
