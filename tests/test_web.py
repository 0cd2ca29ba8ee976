"""The service starts on a clean database and serves its public pages (both databases)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import Settings
from tests.conftest import QINGSHIWAN

Client = Callable[[web.Application], Awaitable[TestClient]]
PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-\d{7,8}")


def make_settings(db_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {"database_url": db_url, "catalog_path": QINGSHIWAN}
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_health_front_page_and_services(db_url: str, aiohttp_client: Client) -> None:
    client = await aiohttp_client(create_app(make_settings(db_url)))

    health = await client.get("/healthz")
    assert health.status == 200
    body = await health.json()
    assert body["status"] == "ok" and len(body["catalog"]) == 16

    front = await client.get("/")
    html = await front.text()
    assert front.status == 200 and "青石湾社区" in html
    for path in ("/services", "/healthz"):
        assert f'href="{path}"' in html

    services = await (await client.get("/services")).text()
    assert "法律援助申请" in services and "滨江街道司法所" in services
    assert "廉洁监督举报" not in services  # confidential: only its unit and admins see it
    assert not PHONE.search(services), "no phone numbers on public pages"


async def test_development_token_is_generated_once_and_kept(
    db_url: str, aiohttp_client: Client
) -> None:
    first = create_app(make_settings(db_url))
    await aiohttp_client(first)
    token = first[keys.TENANTS].default.credentials.token
    assert first[keys.TENANTS].default.credentials.token_generated and len(token) >= 24

    second = create_app(make_settings(db_url))
    await aiohttp_client(second)
    assert second[keys.TENANTS].default.credentials.token == token

    configured = create_app(make_settings(db_url, wechat_token="configured-token"))
    await aiohttp_client(configured)
    assert configured[keys.TENANTS].default.credentials.token == "configured-token"
    assert not configured[keys.TENANTS].default.credentials.token_generated


async def test_a_changed_catalog_file_is_picked_up_at_restart(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.yaml"
    shutil.copy(QINGSHIWAN, path)
    app = create_app(make_settings(db_url, catalog_path=path))
    await aiohttp_client(app)
    assert app[keys.TENANTS].default.catalog.current.has_item("law-talk")

    path.write_text(
        path.read_text(encoding="utf-8").replace("title: 普法讲座", "title: 民法典普法讲座"),
        encoding="utf-8",
    )
    restarted = create_app(make_settings(db_url, catalog_path=path))
    client = await aiohttp_client(restarted)
    assert (
        restarted[keys.TENANTS].default.catalog.current.item("law-talk").title == "民法典普法讲座"
    )
    assert "民法典普法讲座" in await (await client.get("/services")).text()
