"""WeChat's side of the webhook for tests: builds messages as WeChat's servers send
them (signed query, XML body, AES in safe mode with wechatpy's ``WeChatCrypto``) and
reads the replies the way WeChat would."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

import xmltodict
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

ACCOUNT = "gh_0123456789ab"


def sign(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted((token, *parts))).encode()).hexdigest()


@dataclass
class Reply:
    status: int
    body: str
    fields: dict[str, Any]
    """The reply XML's fields (decrypted in safe mode); {} for "success" or errors."""

    @property
    def text(self) -> str:
        return str(self.fields.get("Content", ""))

    @property
    def is_success(self) -> bool:
        return self.status == 200 and self.body == "success"


class WeChatServer:
    """Sends messages to the bot's /wechat as WeChat does."""

    _ids = itertools.count(int(time.time() * 1000))

    def __init__(
        self,
        client: TestClient,
        token: str,
        *,
        aes_key: str | None = None,
        app_id: str = "wx0fake0app0id00",
        path: str = "/wechat",
    ) -> None:
        self.client = client
        self.token = token
        self.path = path
        """The account's server URL: ``/wechat/<community>`` with several communities."""
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    @staticmethod
    def new_msg_id() -> int:
        return next(WeChatServer._ids)

    # --- messages --------------------------------------------------------------------

    @staticmethod
    def xml(openid: str, kind: str, create_time: int | None = None, **fields: Any) -> str:
        parts = [
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
            f"<MsgType><![CDATA[{kind}]]></MsgType>",
        ]
        for name, value in fields.items():
            # A "]]>" in the value is split across two CDATA sections, as WeChat must.
            cdata = str(value).replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{cdata}]]></{name}>")
        return "<xml>" + "".join(parts) + "</xml>"

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self.xml(openid, "text", Content=content, MsgId=msg_id or self.new_msg_id())

    def event_xml(self, openid: str, event: str, key: str | None = None, **extra: Any) -> str:
        fields: dict[str, Any] = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        fields.update(extra)
        return self.xml(openid, "event", **fields)

    # --- sending ---------------------------------------------------------------------

    def query(self, *, timestamp: int | None = None, token: str | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(5)
        return {"signature": sign(token or self.token, ts, nonce), "timestamp": ts, "nonce": nonce}

    async def post(
        self,
        xml: str | bytes,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        query = dict(query or self.query())
        body: str | bytes = xml
        if self.crypto is not None and isinstance(xml, str):
            sealed = xmltodict.parse(
                self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
            )["xml"]
            query.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
            body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
            )
        response = await self.client.post(
            self.path, params=query, data=body, headers=headers or {"Content-Type": "text/xml"}
        )
        return await self.read(response)

    async def read(self, response: ClientResponse) -> Reply:
        body = await response.text()
        fields: dict[str, Any] = {}
        if response.status == 200 and body.startswith("<xml>"):
            if self.crypto is not None:
                outer = xmltodict.parse(body)["xml"]
                body_plain = self.crypto.decrypt_message(
                    body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
                )
                fields = xmltodict.parse(body_plain)["xml"]
            else:
                fields = xmltodict.parse(body)["xml"]
        return Reply(response.status, body, fields)

    async def text(self, openid: str, content: str, msg_id: int | None = None) -> Reply:
        return await self.post(self.text_xml(openid, content, msg_id))

    async def event(self, openid: str, event: str, key: str | None = None, **extra: Any) -> Reply:
        return await self.post(self.event_xml(openid, event, key, **extra))
