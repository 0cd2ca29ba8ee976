"""Starting the real service for webhook tests (over real HTTP via ``aiohttp_client``)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.clock import Clock
from bot.config import Settings
from tests.conftest import DEMO_CATALOG
from tests.wechat_server import WeChatServer

Client = Callable[[web.Application], Awaitable[TestClient]]

TOKEN = "test-token-0123"
APP_ID = "wx0fake0app0id00"
NO_QUIET_HOURS = "00:00-00:00"
"""An empty span: residents may be messaged at any time."""
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")


def settings(db_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "catalog_path": DEMO_CATALOG,
        "wechat_token": TOKEN,
        # The tests sign with a fixed token rather than a generated one, and read
        # late replies from /dev/outbox: they turn the development tools on.
        "dev_tools": "on",
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def start(
    aiohttp_client: Client,
    db_url: str,
    *,
    safe: bool = False,
    clock: Clock | None = None,
    **extra: object,
) -> WeChatServer:
    """The service on ``db_url`` and a WeChat that talks to it.

    On the wall clock (no ``clock``) there are no quiet hours unless a test asks for
    them: a test must not pass by day and fail at night."""
    if clock is None:
        extra.setdefault("quiet_hours", NO_QUIET_HOURS)
    if safe:
        extra = {"wechat_encoding_aes_key": AES_KEY, "wechat_app_id": APP_ID, **extra}
    client = await aiohttp_client(create_app(settings(db_url, **extra), clock=clock))
    return WeChatServer(client, TOKEN, aes_key=AES_KEY if safe else None, app_id=APP_ID)
