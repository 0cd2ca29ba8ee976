"""The inbound side of the official-account protocol: check, decrypt, parse, reply.

Everything a request must pass *before* its body is parsed lives here: the query
signature (compared in constant time), the replay window on the timestamp, and in
safe mode the message signature over the ciphertext and the app id inside it.
wechatpy does AES; the checks are ours because wechatpy compares signatures with
``!=`` and does not look at the timestamp at all. Parsing is ours too (see
``_xml_dict``): the message becomes a flat :class:`Incoming` rather than wechatpy's
per-type classes, since handlers need the same few fields of every type, and
defusedxml over the C parser is safe and several times faster than wechatpy's
xmltodict. Rendering is ours (see ``render_xml``) because wechatpy pastes text into
CDATA as it is: a resident's ``]]>`` echoed back would end the section early.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

SUCCESS = "success"
"""The body that tells WeChat "received, nothing to say"."""


class Rejected(Exception):
    """The request is refused; ``status`` is the HTTP status, the message is for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(token: str, *parts: str) -> str:
    """WeChat's signature: SHA-1 of the token and the parts, sorted and concatenated."""
    return hashlib.sha1("".join(sorted((token, *parts))).encode()).hexdigest()


def check_signature(token: str, query: Mapping[str, str], *, now: float, window: float) -> None:
    """Raise :class:`Rejected` (403) unless the query is signed with our token and fresh."""
    given = query.get("signature", "")
    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if not (given and timestamp and nonce):
        raise Rejected(403, "signature, timestamp or nonce missing")
    expected = signature(token, timestamp, nonce)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise Rejected(403, "bad signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Rejected(403, f"timestamp is not a number: {timestamp[:20]!r}") from None
    if abs(now - sent) > window:
        raise Rejected(403, f"timestamp {sent} is {now - sent:+.0f} s from now (replay?)")


MAX_KEY = 150
"""Longest message key kept as it is (see ``Incoming.key``)."""


@dataclass(frozen=True)
class Incoming:
    """One message or event from a resident, as the handlers see it."""

    kind: str
    """text, voice, image, location, link, video, shortvideo, event, or what WeChat sent."""
    openid: str
    account: str
    """Our official account's id (ToUserName): the sender of our replies."""
    create_time: int
    text: str = ""
    """The text typed, or the speech recognised in a voice message ('' otherwise)."""
    event: str = ""
    """For events, in lower case: subscribe, unsubscribe, click, view, location, scan …"""
    event_key: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What makes a retry recognisable: MsgId for messages, sender + time + event
        (+ key, + the job's MsgID) for events, which have no MsgId.

        Keys are stored in columns of 200 characters (handlers add a suffix of their
        own): a longer one, never from WeChat, whose ids are short, is replaced by its
        digest, which still tells one message from another.
        """
        msg_id = self.raw.get("MsgId")
        if self.kind != "event" and msg_id:
            key = f"msg:{msg_id}"
        else:
            tail = f":{self.event_key}" if self.event_key else ""
            # WeChat's reports of jobs (MASSSENDJOBFINISH) name the job by MsgID; several
            # can come from one sender in one second, and each is its own event.
            job = self.raw.get("MsgID")
            tail += f":{job}" if job else ""
            key = f"evt:{self.openid}:{self.create_time}:{self.event}{tail}"
        if len(key) <= MAX_KEY:
            return key
        return f"{key[:4]}sha256:{hashlib.sha256(key.encode()).hexdigest()}"

    @property
    def attachment(self) -> dict[str, str]:
        """What an image or location message carries, to keep with an order."""
        raw = self.raw
        if self.kind == "image":
            return {"pic_url": _string(raw.get("PicUrl")), "media_id": _string(raw.get("MediaId"))}
        if self.kind == "location":
            return {
                "latitude": _string(raw.get("Location_X")),
                "longitude": _string(raw.get("Location_Y")),
                "label": _string(raw.get("Label")),
            }
        return {}

    @property
    def is_voice_without_text(self) -> bool:
        return self.kind == "voice" and not self.text


@dataclass(frozen=True)
class Envelope:
    """A decoded request: the message, and how its reply must be wrapped."""

    incoming: Incoming
    encrypted: bool


class Codec:
    """Decodes request bodies and encodes replies for one official account."""

    def __init__(self, token: str, *, aes_key: str | None, app_id: str | None) -> None:
        self._token = token
        self._app_id = app_id or ""
        self._cipher = PrpCrypto(_aes_key_bytes(aes_key)) if aes_key else None

    @property
    def safe_mode(self) -> bool:
        return self._cipher is not None

    def decode(self, body: bytes, query: Mapping[str, str]) -> Envelope:
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        xml: bytes | str
        if encrypted:
            xml = self._decrypt(body, query)
        elif self.safe_mode:
            # In safe mode WeChat encrypts everything: a plaintext body is not from it.
            raise Rejected(400, "plaintext message while safe mode is on")
        else:
            xml = body
        return Envelope(_parse(xml), encrypted)

    def encode(self, reply_xml: str | None, envelope: Envelope, *, nonce: str) -> str:
        if reply_xml is None:
            return SUCCESS
        if not envelope.encrypted:
            return reply_xml
        assert self._cipher is not None
        encrypt = self._cipher.encrypt(reply_xml, self._app_id)
        if isinstance(encrypt, bytes):
            encrypt = encrypt.decode()
        timestamp = int(time.time())
        # The nonce comes from the query and is echoed as it is signed: it must be
        # signed and rendered as the same text, or WeChat's check of the signature
        # fails. What XML cannot carry is dropped before both.
        nonce = xml_text(nonce)
        sign = signature(self._token, str(timestamp), nonce, encrypt)
        return render_xml(
            {"Encrypt": encrypt, "MsgSignature": sign, "TimeStamp": timestamp, "Nonce": nonce}
        )

    def _decrypt(self, body: bytes, query: Mapping[str, str]) -> str:
        if self._cipher is None:
            raise Rejected(400, "encrypted message but WECHAT_ENCODING_AES_KEY is not set")
        envelope = _xml_dict(body)
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise Rejected(400, "encrypted message without <Encrypt>")
        given = query.get("msg_signature", "")
        expected = signature(self._token, query["timestamp"], query["nonce"], encrypt)
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise Rejected(403, "bad msg_signature")
        try:
            plain = self._cipher.decrypt(encrypt, self._app_id)
        except InvalidAppIdException:
            raise Rejected(403, "message encrypted for another app id") from None
        except Exception as exc:  # bad padding, bad base64, truncated ciphertext …
            raise Rejected(400, f"cannot decrypt: {type(exc).__name__}") from None
        return plain.decode() if isinstance(plain, bytes) else str(plain)


def text_reply(incoming: Incoming, content: str) -> str:
    """A passive text reply to ``incoming`` (plaintext XML), well-formed whatever the
    content: it may echo what the resident typed."""
    return render_xml(
        {
            "ToUserName": incoming.openid,
            "FromUserName": incoming.account,
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": content,
        }
    )


def render_xml(fields: Mapping[str, str | int]) -> str:
    """WeChat's flat ``<xml>``: numbers bare, text in CDATA, as WeChat writes it.

    The one place replies are turned into XML, so that no text can break it: a
    ``]]>`` inside the text is split across two CDATA sections (``]]`` ends one,
    ``>`` starts the next), and characters XML cannot carry are dropped (see
    :func:`xml_text`).
    """
    parts = [
        f"<{name}>{value}</{name}>"
        if isinstance(value, int)
        else f"<{name}>{cdata(value)}</{name}>"
        for name, value in fields.items()
    ]
    return "<xml>" + "".join(parts) + "</xml>"


def cdata(text: str) -> str:
    """``text`` as CDATA that nothing in it can end early (see :func:`render_xml`)."""
    return "<![CDATA[" + xml_text(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_text(text: str) -> str:
    """``text`` as an XML document can carry it, and as a parser will read it back.

    XML 1.0 has no way at all to carry most C0 controls, U+FFFE/U+FFFF or lone
    surrogates (not even as ``&#1;``): they are dropped rather than replaced by
    U+FFFD, which WeChat would show the resident as a "�" that says nothing. They are
    invisible controls, never typed on a phone, or halves of characters a broken
    encoder split. Line ends become ``\n``, as every XML parser reads them anyway.
    """
    return _NOT_XML.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters outside XML 1.0's ``Char`` production."""


def _aes_key_bytes(aes_key: str) -> bytes:
    import base64

    return base64.b64decode(aes_key + "=")


MAX_DEPTH = 8
"""Deepest element nesting accepted. WeChat's messages are flat: the deepest,
``pic_sysphoto`` events, reach 5 (xml/SendPicsInfo/PicList/item/PicMd5Sum)."""


def _xml_dict(body: bytes | str) -> dict[str, Any]:
    """The children of the root ``<xml>`` as a dict (nested elements as dicts).

    WeChat's XML never has a DTD, so defusedxml refuses any (a DOCTYPE, an ENTITY,
    an external reference) while parsing, in whatever encoding the body is written:
    no entity expansion (billion laughs) and no external entities (XXE) can happen.
    A byte pattern checked before parsing would miss a DTD in UTF-16, which the
    parser reads as well as UTF-8. Nesting deeper than :data:`MAX_DEPTH` is refused
    as it is met, before a deep tree is built or walked.
    """
    root = parse_element(body)
    if root.tag != "xml":
        raise Rejected(400, "root element is not <xml>")
    return _children(root)


def parse_element(body: bytes | str) -> ElementTree.Element:
    """The root element of a WeChat XML document, parsed as :func:`_xml_dict`
    explains (no DTD in any encoding, bounded nesting); :class:`Rejected` (400) if not.
    Also what ``order-menu chat`` reads the service's replies with."""
    raw = body.encode() if isinstance(body, str) else body
    if not raw.strip():
        raise Rejected(400, "empty body")
    parser = DefusedXMLParser(target=_ShallowTree(), forbid_dtd=True)
    try:
        parser.feed(raw)
        root: ElementTree.Element = parser.close()
    except DefusedXmlException as exc:
        raise Rejected(400, f"XML with a DTD or entities refused: {type(exc).__name__}") from None
    except ElementTree.ParseError as exc:
        raise Rejected(400, f"not XML: {exc}"[:200]) from None
    return root


class _ShallowTree(ElementTree.TreeBuilder):
    """ElementTree's tree builder, refusing elements nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: str, attrs: dict[str, str], /) -> ElementTree.Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise Rejected(400, f"XML nested deeper than {MAX_DEPTH} elements")
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> ElementTree.Element:
        self._depth -= 1
        return super().end(tag)


def _children(element: ElementTree.Element) -> dict[str, Any]:
    return {child.tag: _children(child) if len(child) else (child.text or "") for child in element}


def _parse(xml: bytes | str) -> Incoming:
    data = _xml_dict(xml)
    kind = data.get("MsgType")
    if not isinstance(kind, str) or not kind:
        raise Rejected(400, "no MsgType")
    openid = data.get("FromUserName")
    if not isinstance(openid, str) or not openid or len(openid) > 64:
        raise Rejected(400, "no FromUserName")
    try:
        create_time = int(data.get("CreateTime") or 0)
    except (TypeError, ValueError):
        raise Rejected(400, "CreateTime is not a number") from None
    kind = kind.lower()
    text = ""
    if kind == "text":
        text = _string(data.get("Content"))
    elif kind == "voice":
        text = _string(data.get("Recognition"))
    event = _string(data.get("Event")).lower() if kind == "event" else ""
    return Incoming(
        kind=kind,
        openid=openid,
        account=_string(data.get("ToUserName")),
        create_time=create_time,
        text=text.strip(),
        event=event,
        event_key=_string(data.get("EventKey")),
        raw=data,
    )


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
