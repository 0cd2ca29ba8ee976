"""Records of access to residents' personal information: each view of an order's
contact details or photos and each export is in the audit log, and exports mask phone
numbers for every role but admin."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from bot import keys
from storage import models
from tests.test_console import login, make_site
from tests.webhook_app import Client


async def audit_entries(app: object, action: str) -> list[models.AuditEntry]:
    """The entries of ``action``, once those queued behind the pages are written."""
    await app[keys.ACCESS_LOG].drained()  # type: ignore[index]
    async with app[keys.SESSIONMAKER]() as session:  # type: ignore[index]
        rows = await session.scalars(
            select(models.AuditEntry)
            .where(models.AuditEntry.action == action)
            .order_by(models.AuditEntry.id)
        )
        return list(rows)


async def exported(browser: object) -> list[list[str]]:
    reply = await browser.get("/console/export.csv")  # type: ignore[attr-defined]
    assert reply.status == 200
    return list(csv.reader(io.StringIO((await reply.read()).decode("utf-8-sig"))))


async def test_views_of_contact_details_and_exports_are_recorded_and_phones_masked(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    wechat, repair, _ = await make_site(db_url, aiohttp_client, tmp_path)
    app = wechat.client.app
    for username in ("staff1", "property1"):
        browser = await login(wechat, username)
        try:
            page = await (await browser.get(f"/console/orders/{repair}")).text()
            assert "13899990000" in page  # they call the resident
        finally:
            await browser.close()
    views = await audit_entries(app, "view.contact")
    assert [(v.actor, v.target, v.detail) for v in views] == [
        ("staff1", repair, "电话、地址"),
        ("property1", repair, "电话、地址"),
    ]

    staff = await login(wechat, "staff1")
    admin = await login(wechat, "admin1")
    try:
        masked = await exported(staff)
        whole = await exported(admin)
        await app[keys.ACCESS_LOG].drained()
        audit_page = await (await admin.get("/console/audit")).text()
    finally:
        await staff.close()
        await admin.close()
    phone = masked[0].index("电话")
    row = next(r for r in masked[1:] if r[0] == repair)
    assert row[phone] == "138****0000"
    assert next(r for r in whole[1:] if r[0] == repair)[phone] == "13899990000"
    exports = await audit_entries(app, "export.orders")
    assert [(e.actor, e.detail.endswith(("电话已遮挡", "电话完整"))) for e in exports] == [
        ("staff1", True),
        ("admin1", True),
    ]
    assert exports[0].detail.endswith("电话已遮挡") and exports[1].detail.endswith("电话完整")
    assert "查看居民联系方式或照片" in audit_page and "导出订单表" in audit_page


async def test_a_unit_member_shown_the_phone_in_chat_is_recorded_once(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    from tests.ordering_catalog import write_catalog
    from tests.test_ordering import say
    from tests.test_units import invite, place
    from tests.webhook_app import start

    wechat = await start(aiohttp_client, db_url, catalog_path=write_catalog(tmp_path))
    code = await place(wechat, "o_resident")
    await say(wechat, "o_worker", f"绑定 {await invite(db_url, 'property')}")
    msg_id = wechat.new_msg_id()
    for _ in range(2):  # WeChat retries: the view is recorded once
        accepted = await wechat.text("o_worker", f"接单 {code}", msg_id=msg_id)
        assert "13899990000" in accepted.text
    views = await audit_entries(wechat.client.app, "view.contact")
    assert [(v.actor, v.target, v.detail) for v in views] == [
        ("阳光物业（微信）", code, "电话、地址")
    ]


async def test_an_anonymised_order_shows_neither_phone_nor_name_while_another_is_open(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """The resident's own copy of their phone and name stays while another order of
    theirs is open; an order whose contact details were anonymised must not show them
    (they came from the resident's row, not from the order)."""
    from storage.repositories.privacy import anonymise_orders

    wechat, repair, _ = await make_site(db_url, aiohttp_client, tmp_path)
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == repair))
        assert order is not None
        resident = await session.get(models.Resident, order.resident_id)
        assert resident is not None and resident.phone == "13899990000"
        resident.name = "王阿姨"
        await anonymise_orders(session, [order.id], app[keys.CLOCK].now())
    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get(f"/console/orders/{repair}")).text()
        rows = await exported(staff)
    finally:
        await staff.close()
    assert "13899990000" not in page and "王阿姨" not in page
    row = next(r for r in rows[1:] if r[0] == repair)
    assert row[rows[0].index("居民称呼")] == "未留姓名" and row[rows[0].index("电话")] == ""
