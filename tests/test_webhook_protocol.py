"""/wechat checks a request before it reads it: signature, replay window, size, XML."""

from __future__ import annotations

import time

import pytest

from tests.webhook_app import AES_KEY, TOKEN, Client, start
from tests.wechat_server import WeChatServer, sign

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol5;</Content><MsgId>1</MsgId></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""


async def test_url_verification_echoes_only_when_signed(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    good = await wechat.client.get("/wechat", params={**wechat.query(), "echostr": "abc123"})
    assert good.status == 200 and await good.text() == "abc123"
    forged = await wechat.client.get(
        "/wechat", params={**wechat.query(token="not-our-token"), "echostr": "abc123"}
    )
    assert forged.status == 403 and "abc123" not in await forged.text()


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"signature": ""},
        {"nonce": "other-nonce"},
        {"timestamp": "not-a-number"},
    ],
)
async def test_bad_signatures_are_refused(
    db_url: str, aiohttp_client: Client, change: dict[str, str]
) -> None:
    wechat = await start(aiohttp_client, db_url)
    query = {**wechat.query(), **change}
    reply = await wechat.post(wechat.text_xml("o_res_1", "帮助"), query=query)
    assert reply.status == 403


@pytest.mark.parametrize("age", [-301, 301, 86400])
async def test_requests_outside_the_replay_window_are_refused(
    db_url: str, aiohttp_client: Client, age: int
) -> None:
    wechat = await start(aiohttp_client, db_url)
    old = wechat.query(timestamp=int(time.time()) - age)
    reply = await wechat.post(wechat.text_xml("o_res_1", "帮助"), query=old)
    assert reply.status == 403
    # A request signed just now, inside the window, is fine.
    fresh = wechat.query(timestamp=int(time.time()) - 200)
    assert (await wechat.post(wechat.text_xml("o_res_1", "帮助"), query=fresh)).status == 200


async def test_replay_window_is_configurable(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url, wechat_replay_window=30)
    old = wechat.query(timestamp=int(time.time()) - 60)
    assert (await wechat.post(wechat.text_xml("o_res_1", "帮助"), query=old)).status == 403


async def test_oversized_bodies_get_413(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    huge = wechat.text_xml("o_res_1", "水" * 40_000)  # ~120 KB of UTF-8
    assert (await wechat.post(huge)).status == 413

    async def chunks():  # no Content-Length: the limit still holds
        for _ in range(20):
            yield b"<xml>" + b"x" * 8192

    response = await wechat.client.post("/wechat", params=wechat.query(), data=chunks())
    assert response.status == 413
    # Still serving.
    assert (await wechat.text("o_res_1", "帮助")).status == 200


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        "this is not xml",
        "",
        "<xml><FromUserName>o1</FromUserName><CreateTime>1</CreateTime></xml>",
        "<notxml><MsgType>text</MsgType></notxml>",
        "<xml><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>",
        "<xml><MsgType>text</MsgType><FromUserName>o1</FromUserName><CreateTime>x</CreateTime></xml>",
        "<xml><unclosed>",
    ],
    ids=[
        "billion-laughs",
        "xxe",
        "not-xml",
        "empty",
        "no-msgtype",
        "wrong-root",
        "no-sender",
        "bad-time",
        "broken",
    ],
)
async def test_hostile_or_broken_xml_gets_400_quickly(
    db_url: str, aiohttp_client: Client, body: str
) -> None:
    wechat = await start(aiohttp_client, db_url)
    began = time.monotonic()
    reply = await wechat.post(body.encode())
    assert reply.status == 400
    assert time.monotonic() - began < 1.0
    assert "root:" not in reply.body  # nothing of /etc/passwd
    assert (await wechat.text("o_res_1", "帮助")).status == 200


async def test_unknown_message_types_get_success(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    odd = wechat.xml("o_res_1", "hologram", MsgId=wechat.new_msg_id())
    assert (await wechat.post(odd)).is_success
    odd_event = wechat.event_xml("o_res_1", "teleport_finished")
    assert (await wechat.post(odd_event)).is_success


# --- safe mode -------------------------------------------------------------------------


async def test_safe_mode_round_trip(db_url: str, aiohttp_client: Client) -> None:
    """WeChat's side is wechatpy's WeChatCrypto: it encrypts, we decrypt and encrypt the
    reply, it decrypts and checks the reply's signature."""
    wechat = await start(aiohttp_client, db_url, safe=True)
    reply = await wechat.text("o_res_1", "帮助")
    assert reply.status == 200
    assert "<Encrypt>" in reply.body and "帮助" not in reply.body
    assert reply.fields["ToUserName"] == "o_res_1"
    assert "服务小助手" in reply.text


async def test_safe_mode_refuses_tampering_and_plaintext(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url, safe=True)
    query = wechat.query()
    sealed = wechat.crypto.encrypt_message(  # type: ignore[union-attr]
        wechat.text_xml("o_res_1", "帮助"), query["nonce"], query["timestamp"]
    )
    encrypt = sealed.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"

    def post(msg_signature: str, text: str = body):  # type: ignore[no-untyped-def]
        params = {**query, "encrypt_type": "aes", "msg_signature": msg_signature}
        return wechat.client.post("/wechat", params=params, data=text)

    assert (await post("f" * 40)).status == 403  # ciphertext signature wrong
    flipped = encrypt[:-8] + ("A" if encrypt[-8] != "A" else "B") + encrypt[-7:]
    tampered = body.replace(encrypt, flipped)
    signed_garbage = sign(TOKEN, query["timestamp"], query["nonce"], flipped)
    assert (await post(signed_garbage, tampered)).status in (400, 403)
    # Encrypted for another official account: the app id inside does not match.
    other = WeChatServer(wechat.client, TOKEN, aes_key=AES_KEY, app_id="wx_someone_else")
    assert (await other.text("o_res_1", "帮助")).status == 403
    # Plaintext while safe mode is on is not from WeChat.
    plain = await wechat.client.post(
        "/wechat", params=wechat.query(), data=wechat.text_xml("o_res_1", "帮助")
    )
    assert plain.status == 400
    assert (await wechat.text("o_res_1", "帮助")).status == 200
