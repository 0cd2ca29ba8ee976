"""Logs: one JSON object per event, with the request id, and no personal data."""

from __future__ import annotations

import json
import logging

from bot.logs import JsonFormatter, redact
from tests.webhook_app import Client, start

OPENID = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc"


def test_phones_and_openids_never_reach_the_log_in_the_clear() -> None:
    line = redact(f"resident {OPENID} left 13812345678 for unit 0773-2800001")
    assert "13812345678" not in line and "138****5678" in line
    assert OPENID not in line and "openid#" in line
    assert redact(OPENID) == redact(OPENID)  # the same resident, the same hash
    record = logging.LogRecord(
        "bot.x", logging.WARNING, __file__, 1, "call %s", ("13900001111",), None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["msg"] == "call 139****1111"
    assert entry["ts"].endswith("Z") and entry["request_id"] == "-"


async def test_every_response_carries_a_request_id(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    mine = await wechat.client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert mine.headers["X-Request-Id"] == "abc123"
    fresh = await wechat.client.get("/healthz")
    assert len(fresh.headers["X-Request-Id"]) == 12
