"""Property-based fuzz of /wechat (hypothesis): arbitrary bodies, query strings and
headers get only 200, 400, 403 or 413 - never a 500 - and the server keeps serving."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import spawn_serve, stop_servers, wait_healthy
from tests.wechat_server import sign

TOKEN = "test-token-0123"
ALLOWED = {200, 400, 403, 413}

xml_field = st.sampled_from(
    [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Content",
        "MsgId",
        "Event",
        "EventKey",
        "Recognition",
        "Encrypt",
        "Location_X",
        "PicUrl",
    ]
)
text = st.text(max_size=40)
element = st.builds(lambda name, value: f"<{name}>{value}</{name}>", xml_field, text) | st.builds(
    lambda name, value: f"<{name}><![CDATA[{value}]]></{name}>", xml_field, text
)
xmlish = st.builds(lambda parts: "<xml>" + "".join(parts) + "</xml>", st.lists(element, max_size=8))
bodies = st.one_of(
    st.binary(max_size=300),
    text.map(str.encode),
    xmlish.map(str.encode),
    st.sampled_from([b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>", b"<xml>", b"", b"\x00\xff"]),
)
queries = st.dictionaries(
    st.sampled_from(
        ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr", "x"]
    ),
    text,
    max_size=6,
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Forwarded-For", "User-Agent", "Accept"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=3,
)


def signed(query: dict[str, str], valid: bool) -> dict[str, str]:
    """Half of the cases carry a good signature, so the body parser is reached."""
    if not valid:
        return query
    timestamp, nonce = str(int(time.time())), "fuzz"
    return {
        **query,
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sign(TOKEN, timestamp, nonce),
    }


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """``order-menu serve`` in a subprocess: hypothesis drives it synchronously."""
    process, base = spawn_serve(db_url, tmp_path, token=TOKEN)
    try:
        wait_healthy(base)
        yield base
    finally:
        stop_servers([process])


def request(
    base: str, method: str, query: dict[str, str], body: bytes, header: dict[str, str]
) -> int:
    url = f"{base}/wechat?{urllib.parse.urlencode(query)}"
    call = urllib.request.Request(
        url, data=body if method == "POST" else None, method=method, headers=header
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_whatever_is_posted_the_answer_is_never_a_500(server: str) -> None:
    seen: set[int] = set()

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=bodies,
        query=queries,
        header=headers,
        valid=st.booleans(),
        method=st.sampled_from(["POST", "GET"]),
    )
    def case(
        body: bytes, query: dict[str, str], header: dict[str, str], valid: bool, method: str
    ) -> None:
        status = request(server, method, signed(query, valid), body, header)
        seen.add(status)
        assert status in ALLOWED, (status, body[:80], query)

    case()
    assert 400 in seen and 403 in seen  # the fuzz reached past the signature check
    timestamp, nonce = str(int(time.time())), "after"
    query = {"timestamp": timestamp, "nonce": nonce, "signature": sign(TOKEN, timestamp, nonce)}
    xml = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_after</FromUserName>"
        f"<CreateTime>{timestamp}</CreateTime><MsgType>text</MsgType>"
        "<Content>帮助</Content><MsgId>987654321</MsgId></xml>"
    )
    assert request(server, "POST", query, xml.encode(), {}) == 200  # still serving
