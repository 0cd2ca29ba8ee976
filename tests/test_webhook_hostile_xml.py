"""Hostile XML on /wechat: DTDs in any encoding, deep nesting, and replies that stay
well-formed whatever the resident typed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from wechatpy.crypto import WeChatCrypto

from bot import keys
from bot.wechat.inbound import Codec, Envelope, Incoming, text_reply
from storage import models
from tests.ordering_catalog import write_catalog
from tests.webhook_app import AES_KEY, APP_ID, TOKEN, Client, start

MARK = "ENTITYEXPANDED"
"""What the hostile documents' entity expands to: it must never be seen or stored."""

# Codec, and the encoding's name in the XML declaration.
ENCODINGS = {
    "utf-8": ("utf-8", "UTF-8"),
    "utf-8-bom": ("utf-8-sig", "UTF-8"),
    "utf-16-bom": ("utf-16", "UTF-16"),
    "utf-16le": ("utf-16-le", "UTF-16"),
    "utf-16be": ("utf-16-be", "UTF-16"),
    "utf-32-bom": ("utf-32", "UTF-32"),
    "utf-32le": ("utf-32-le", "UTF-32"),
    "utf-32be": ("utf-32-be", "UTF-32"),
}


def message(openid: str, content_xml: str, *, msg_id: int, prolog: str = "") -> str:
    """A text message whose Content is ``content_xml`` as it stands (markup allowed)."""
    return (
        f"{prolog}<xml><ToUserName><![CDATA[gh]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{content_xml}</Content><MsgId>{msg_id}</MsgId></xml>"
    )


def hostile(openid: str, msg_id: int, encoding_name: str = "UTF-8", declared: bool = True) -> str:
    """A message whose text is an entity defined in an internal DTD."""
    declaration = f'<?xml version="1.0" encoding="{encoding_name}"?>' if declared else ""
    prolog = f'{declaration}<!DOCTYPE xml [<!ENTITY need "外星人入侵{MARK}">]>'
    return message(openid, "&need;", msg_id=msg_id, prolog=prolog)


async def stored_text(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """Everything the service keeps of residents' words, as one string to search."""
    async with sessionmaker() as session:
        parts = [
            *(await session.scalars(select(models.UnmetNeed.text))),
            *(await session.scalars(select(models.ProcessedMessage.reply))),
            *(await session.scalars(select(models.Handoff.text))),
            *(await session.scalars(select(models.Order.description))),
            *(json.dumps(d) for d in await session.scalars(select(models.ConversationState.data))),
        ]
    return "\n".join(p or "" for p in parts)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
async def test_a_dtd_is_refused_in_every_encoding(
    db_url: str, aiohttp_client: Client, encoding: str, declared: bool
) -> None:
    """A UTF-16 body hid its DTD from a byte pattern, and its entity was expanded and
    kept as a need. Whatever the encoding, a DTD is refused and nothing of it stays."""
    wechat = await start(aiohttp_client, db_url)
    codec, name = ENCODINGS[encoding]
    body = hostile("o_enc", wechat.new_msg_id(), name, declared).encode(codec)
    reply = await wechat.post(body)
    assert reply.status == 400
    assert MARK not in reply.body
    assert MARK not in await stored_text(wechat.client.app[keys.SESSIONMAKER])
    assert (await wechat.text("o_enc", "帮助")).status == 200  # still serving


@pytest.mark.parametrize(
    ("encoding", "status"),
    [
        *((name, 200) for name in ("utf-8-bom", "utf-16-bom", "utf-16le", "utf-16be")),
        *((name, 400) for name in ("utf-32-bom", "utf-32le", "utf-32be")),
    ],
)
async def test_a_message_in_utf16_is_read_like_one_in_utf8_and_utf32_is_refused(
    db_url: str, aiohttp_client: Client, encoding: str, status: int
) -> None:
    """UTF-32 is refused with a 400, not a 500: the parser does not read it, and
    WeChat never sends it."""
    wechat = await start(aiohttp_client, db_url)
    codec, name = ENCODINGS[encoding]
    prolog = f'<?xml version="1.0" encoding="{name}"?>'
    body = message("o_enc", "<![CDATA[帮助]]>", msg_id=wechat.new_msg_id(), prolog=prolog)
    reply = await wechat.post(body.encode(codec), headers={"Content-Type": "text/xml"})
    assert reply.status == status
    if status == 200:
        assert "服务小助手" in reply.text


async def test_a_dtd_inside_an_encrypted_message_is_refused(
    db_url: str, aiohttp_client: Client
) -> None:
    """In safe mode the decrypted message goes through the same parser."""
    wechat = await start(aiohttp_client, db_url, safe=True)
    reply = await wechat.post(hostile("o_enc", wechat.new_msg_id()))
    assert reply.status == 400
    assert MARK not in await stored_text(wechat.client.app[keys.SESSIONMAKER])
    assert (await wechat.text("o_enc", "帮助")).status == 200


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_deeply_nested_xml_gets_400_not_500(
    db_url: str, aiohttp_client: Client, safe: bool
) -> None:
    """2,000 nested elements in 14 KB made the service fail (RecursionError: 500)."""
    wechat = await start(aiohttp_client, db_url, safe=safe)
    deep = "<a>" * 2000 + "</a>" * 2000
    body = message("o_deep", deep, msg_id=wechat.new_msg_id())
    assert len(body.encode()) < 15_000
    assert (await wechat.post(body)).status == 400
    assert (await wechat.text("o_deep", "帮助")).status == 200


async def test_the_deepest_message_wechat_sends_is_still_read(
    db_url: str, aiohttp_client: Client
) -> None:
    """A system-camera event nests five deep (xml/SendPicsInfo/PicList/item/PicMd5Sum)."""
    wechat = await start(aiohttp_client, db_url)
    event = wechat.event_xml("o_pics", "pic_sysphoto", "6").replace(
        "</xml>",
        "<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA["
        "1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo></xml>",
    )
    assert (await wechat.post(event)).status == 200


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_a_need_with_cdata_end_is_echoed_in_a_well_formed_summary(
    db_url: str, aiohttp_client: Client, tmp_path: Path, safe: bool
) -> None:
    """The confirmation summary echoes the need: a ``]]>`` in it ended the reply's
    CDATA early, the reply was not XML, and WeChat showed the resident nothing."""
    wechat = await start(aiohttp_client, db_url, safe=safe, catalog_path=write_catalog(tmp_path))
    need = "楼上老往我家滴水]]><急>&amp;"
    assert "帮您预约" in (await wechat.text("o_cdata", need)).text
    assert "手机号码" in (await wechat.text("o_cdata", "3栋]]>2单元")).text
    summary = await wechat.text("o_cdata", "13812345678")  # reading it parses the XML
    assert summary.status == 200
    assert f"您说的情况：{need}" in summary.text and "地址：3栋]]>2单元" in summary.text


# --- the renderer, for any text -----------------------------------------------------------
# (The same property through the real webhook is in tests/test_webhook_fuzz.py, which
# drives a ``serve`` process synchronously, as hypothesis needs.)


def carried(text: str) -> str:
    """What an XML document can carry of ``text``, as a parser reads it back (written
    from the XML 1.0 ``Char`` production and its end-of-line handling)."""

    def allowed(char: str) -> bool:
        code = ord(char)
        return (
            char in "\t\n\r"
            or 0x20 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF
        )

    kept = "".join(c for c in text if allowed(c))
    return kept.replace("\r\n", "\n").replace("\r", "\n")


tricky = st.sampled_from(
    [
        *("]]>", "]]", "]", ">", "<![CDATA[", "&", "&amp;", "<", "\r\n", "\r"),
        *("\x00", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff", "\x85", "\U0001f600"),
    ]
)
any_text = st.lists(
    st.text(st.characters(exclude_categories=()), max_size=8) | tricky, max_size=12
).map("".join)


def fields_of(xml: str) -> dict[str, str]:
    root = ElementTree.fromstring(xml.encode("utf-8"))
    return {child.tag: child.text or "" for child in root}


@settings(max_examples=500, deadline=None)
@given(content=any_text, openid=any_text, account=any_text)
@example(content="就是这样]]>结束", openid="o_1", account="gh")
def test_a_text_reply_is_well_formed_and_says_what_was_meant(
    content: str, openid: str, account: str
) -> None:
    incoming = Incoming(kind="text", openid=openid, account=account, create_time=1)
    reply = text_reply(incoming, content)
    fields = fields_of(reply)  # raises if the reply is not XML
    assert fields["Content"] == carried(content)
    assert fields["ToUserName"] == carried(openid)
    assert fields["FromUserName"] == carried(account)
    assert fields["MsgType"] == "text"


@settings(max_examples=200, deadline=None)
@given(content=any_text, nonce=any_text)
@example(content="]]>", nonce="n]]><x/>")
def test_a_safe_mode_reply_is_well_formed_and_opens_for_wechat(content: str, nonce: str) -> None:
    """The encrypted envelope echoes the query's nonce: it too must not break the XML,
    and WeChat must still be able to check its signature and decrypt it."""
    codec = Codec(TOKEN, aes_key=AES_KEY, app_id=APP_ID)
    incoming = Incoming(kind="text", openid="o_1", account="gh", create_time=1)
    envelope = Envelope(incoming, encrypted=True)
    sealed = codec.encode(text_reply(incoming, content), envelope, nonce=nonce)
    outer = fields_of(sealed)
    assert outer["Nonce"] == carried(nonce)
    wechat = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    plain = wechat.decrypt_message(
        sealed, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    assert fields_of(plain)["Content"] == carried(content)


@pytest.mark.parametrize("long_id", ["MsgId", "EventKey"])
async def test_ids_longer_than_wechat_sends_are_handled_once_not_refused_forever(
    db_url: str, aiohttp_client: Client, long_id: str
) -> None:
    """A 300-character MsgId or EventKey made a key too long for its column: the
    database refused it and the message got 503 on every retry (on PostgreSQL)."""
    wechat = await start(aiohttp_client, db_url)
    if long_id == "MsgId":
        xml = wechat.xml("o_ids", "text", Content="帮助", MsgId="9" * 300)
    else:
        xml = wechat.event_xml("o_ids", "CLICK", "K" * 300)
    first = await wechat.post(xml)
    assert first.status == 200
    again = await wechat.post(xml)  # WeChat's retry: the same answer, nothing run twice
    assert (again.status, again.body) == (first.status, first.body)
