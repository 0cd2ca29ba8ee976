"""Every message type WeChat sends gets the answer a resident would expect."""

from __future__ import annotations

from sqlalchemy import select

from bot import keys
from bot.wechat import HELP
from storage.models import Resident, UnmetNeed
from tests.webhook_app import Client, start


async def _resident(wechat, openid: str) -> Resident | None:  # type: ignore[no-untyped-def]
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return await session.scalar(select(Resident).where(Resident.openid == openid))


async def test_following_is_welcomed_and_unfollowing_is_recorded(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    reply = await wechat.event("o_new", "subscribe")
    assert "欢迎关注解东社区" in reply.text and reply.fields["ToUserName"] == "o_new"
    assert reply.fields["FromUserName"] == "gh_0123456789ab"
    resident = await _resident(wechat, "o_new")
    assert resident is not None and resident.following and resident.last_message_at

    # From a QR code with a scene: welcomed the same way.
    scan = await wechat.event("o_scan", "subscribe", key="qrscene_grid1", Ticket="t")
    assert "欢迎关注" in scan.text

    gone = await wechat.event("o_new", "unsubscribe")
    assert gone.is_success
    resident = await _resident(wechat, "o_new")
    assert resident is not None and not resident.following


async def test_help_by_text_by_voice_and_by_menu(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    for reply in (
        await wechat.text("o_res_1", "帮助"),
        await wechat.text("o_res_1", " 帮助。"),
        await wechat.post(
            wechat.xml(
                "o_res_1",
                "voice",
                MediaId="m1",
                Format="amr",
                Recognition="帮助。",
                MsgId=wechat.new_msg_id(),
            )
        ),
        await wechat.event("o_res_1", "CLICK", key=HELP),
    ):
        assert "服务小助手" in reply.text


async def test_voice_is_read_as_text_and_unrecognised_voice_asks_again(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    spoken = await wechat.post(
        wechat.xml(
            "o_res_1",
            "voice",
            MediaId="m2",
            Format="amr",
            Recognition="我妈走不动了能不能让医生来家里",
            MsgId=wechat.new_msg_id(),
        )
    )
    assert "上门健康随访" in spoken.text
    silent = await wechat.post(
        wechat.xml("o_res_1", "voice", MediaId="m3", Format="amr", MsgId=wechat.new_msg_id())
    )
    assert "没听清" in silent.text


async def test_a_need_is_answered_with_the_service_or_kept_as_unmet(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await start(aiohttp_client, db_url)
    one = await wechat.text("o_res_1", "楼上老往我家滴水")
    assert "水电维修" in one.text
    odd = await wechat.text("o_res_2", "能帮我订一张去北京的机票吗")
    assert "帮不上" in odd.text  # no community service: said plainly, not kept as a need
    need = await wechat.text("o_res_2", "小区里能不能办个老年人学跳舞的班")
    assert "记下了" in need.text
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        needs = (await session.scalars(select(UnmetNeed))).all()
    assert [n.text for n in needs] == ["小区里能不能办个老年人学跳舞的班"]
    assert needs[0].openid == "o_res_2"


async def test_media_messages_and_quiet_events(db_url: str, aiohttp_client: Client) -> None:
    wechat = await start(aiohttp_client, db_url)
    image = await wechat.post(
        wechat.xml(
            "o_res_1", "image", PicUrl="http://x/p.jpg", MediaId="m", MsgId=wechat.new_msg_id()
        )
    )
    assert "图片" in image.text
    place = await wechat.post(
        wechat.xml(
            "o_res_1",
            "location",
            Location_X="25.27",
            Location_Y="110.29",
            Scale="15",
            Label="解东路",
            MsgId=wechat.new_msg_id(),
        )
    )
    assert "位置" in place.text
    link = await wechat.post(
        wechat.xml(
            "o_res_1", "link", Title="t", Description="d", Url="http://x", MsgId=wechat.new_msg_id()
        )
    )
    assert "分享" in link.text
    for event, key in (("VIEW", "http://x"), ("LOCATION", None), ("TEMPLATESENDJOBFINISH", None)):
        assert (await wechat.event("o_res_1", event, key=key)).is_success
