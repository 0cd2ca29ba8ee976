"""The WeChat-group kit of a campaign: the poster (read back as a picture, its QR code
decoded), the text for a 楼栋群, and the groups staff tick."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageFont

from bot import keys
from bot.campaigns.fonts import FontFile, locate
from bot.campaigns.group_text import LONGEST, group_post, reach_line
from bot.campaigns.poster import wrap
from storage import models
from storage.repositories.groups import posted_groups
from tests.fake_wechat import QRCODE_CREATE_PATH, FakeWeChat, fake_wechat_fixture
from tests.test_console import CSRF, add_user, login
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()
TEXT = (
    "近期冒充客服退款、刷单返利的诈骗高发。记住“三不一多”：未知链接不点击，陌生来电不轻信，"
    "个人信息不透露，转账汇款多核实。如遇可疑情况，请拨打96110反诈专线或到社区咨询。"
)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


async def service(
    aiohttp_client: Client, db_url: str, fake: FakeWeChat | None = None
) -> WeChatServer:
    """The service with a staff member; on the fake WeChat's account when given."""
    account = {}
    if fake is not None:
        account = {
            "wechat_app_id": fake.app_id,
            "wechat_app_secret": fake.app_secret,
            "wechat_api_base": fake.base_url,
        }
    wechat = await start(aiohttp_client, db_url, **account)
    await add_user(wechat, "staff1", "staff")
    return wechat


async def campaign(wechat: WeChatServer, topic: str = "anti-fraud") -> int:
    """A campaign already sent (so the sender leaves it alone); its id."""
    app = wechat.client.app
    async with app[keys.SESSIONMAKER].begin() as session:
        row = models.Broadcast(
            community_id=app[keys.TENANTS].default.id,
            topic=topic,
            title="陌生来电说退款，一律挂断",
            text=TEXT,
            status="done",
            created_by="staff1",
        )
        session.add(row)
        await session.flush()
        return row.id


def read_poster(png: bytes) -> tuple[Image.Image, str]:
    """The poster as a picture, and what its QR code says."""
    image = Image.open(io.BytesIO(png))
    image.load()
    codes = zxingcpp.read_barcodes(image)
    assert len(codes) == 1, f"{len(codes)} codes found"
    return image, codes[0].text


def looks_drawn(image: Image.Image) -> None:
    """Not blank: text in several colours, anti-aliased, over a good part of it."""
    rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 200, f"only {len(colours)} colours"
    white = next((n for n, c in colours if c == (255, 255, 255)), 0)
    assert white < 0.8 * rgb.width * rgb.height, "mostly white"


async def test_the_poster_renders_and_its_code_is_the_campaigns_scene(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    wechat = await service(aiohttp_client, db_url, fake_wechat)
    number = await campaign(wechat)
    staff = await login(wechat, "staff1")
    try:
        listed = await (await staff.get("/console/broadcasts")).text()
        assert f'href="/console/broadcasts/{number}/kit"' in listed
        page = await (await staff.get(f"/console/broadcasts/{number}/kit")).text()
        assert f'src="/console/broadcasts/{number}/poster.png"' in page
        reply = await staff.get(f"/console/broadcasts/{number}/poster.png")
        assert reply.status == 200 and reply.content_type == "image/png"
        image, url = read_poster(await reply.read())
        download = await staff.get(f"/console/broadcasts/{number}/poster.png?download=1")
        assert "attachment" in download.headers["Content-Disposition"]
        assert read_poster(await download.read())[1] == url
    finally:
        await staff.close()
    assert image.size == (1080, 1620)
    looks_drawn(image)
    assert url.startswith("http://weixin.qq.com/q/")
    assert fake_wechat.scene_of(url) == f"campaign-{number}"
    # Made once with WeChat (an account holds 100,000 permanent codes), then kept.
    assert len(fake_wechat.calls(QRCODE_CREATE_PATH)) == 1


async def test_without_an_account_the_poster_carries_a_stand_in_naming_its_scene(
    db_url: str, aiohttp_client: Client
) -> None:
    wechat = await service(aiohttp_client, db_url)
    number = await campaign(wechat)
    staff = await login(wechat, "staff1")
    try:
        reply = await staff.get(f"/console/broadcasts/{number}/poster.png")
        _, url = read_poster(await reply.read())
    finally:
        await staff.close()
    assert url == f"dev-qrcode:scene=campaign-{number}"


async def test_wechat_down_leaves_the_kit_usable_and_says_so_in_chinese(
    db_url: str, aiohttp_client: Client, fake_wechat: FakeWeChat
) -> None:
    wechat = await service(aiohttp_client, db_url, fake_wechat)
    number = await campaign(wechat)
    fake_wechat.fail_next(QRCODE_CREATE_PATH, [40097] * 2)
    staff = await login(wechat, "staff1")
    try:
        page = await staff.get(f"/console/broadcasts/{number}/kit")
        shown = await page.text()
        assert page.status == 200 and "二维码还没生成" in shown
        assert "有事找社区" in shown  # the group text is there all the same
        png = await staff.get(f"/console/broadcasts/{number}/poster.png")
        assert png.status == 503 and "二维码还没生成" in await png.text()
        again = await staff.get(f"/console/broadcasts/{number}/poster.png")  # WeChat is back
        assert again.status == 200
    finally:
        await staff.close()


async def test_ticking_the_groups_a_campaign_went_to(db_url: str, aiohttp_client: Client) -> None:
    wechat = await service(aiohttp_client, db_url)
    number = await campaign(wechat)
    staff = await login(wechat, "staff1")
    try:
        token = CSRF.search(await (await staff.get("/console/groups")).text())[1]  # type: ignore[index]
        for name, grid, buildings in (
            ("解东小区3栋群", "g1", "3栋、4栋"),
            ("解东小区8栋群", "g2", "8栋 9栋"),
        ):
            made = await staff.post(
                "/console/groups",
                data={"csrf": token, "name": name, "grid": grid, "buildings": buildings},
                allow_redirects=False,
            )
            assert made.status == 302, await made.text()
        twice = await staff.post(
            "/console/groups",
            data={"csrf": token, "name": "解东小区3栋群", "grid": "g1", "buildings": "3栋"},
        )
        assert twice.status == 400 and "已经有叫“解东小区3栋群”的群了" in await twice.text()
        page = await (await staff.get(f"/console/broadcasts/{number}/kit")).text()
        unposted = r'value="(\d+)">\s*<span class="tag unposted">未发</span> <b>([^<]+)'
        ids = dict(re.findall(unposted, page))
        assert sorted(ids.values()) == ["解东小区3栋群", "解东小区8栋群"], page
        third, eighth = sorted(ids)

        async def mark(group: str, posted: str) -> None:
            reply = await staff.post(
                f"/console/broadcasts/{number}/groups",
                data={"csrf": token, "group": group, "posted": posted},
                allow_redirects=False,
            )
            assert reply.status == 302, await reply.text()

        await mark(third, "yes")
        await mark(third, "yes")  # a double click: one tick
        await mark(eighth, "yes")
        await mark(eighth, "no")  # un-ticked
        page = await (await staff.get(f"/console/broadcasts/{number}/kit")).text()
        assert "已发 1 个" in page and "已发</span> <b>解东小区3栋群</b>" in page
        assert "未发</span> <b>解东小区8栋群</b>" in page
    finally:
        await staff.close()
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        posted = await posted_groups(session, number)
    assert [(p.name, p.grid_key, p.buildings, p.posted_by) for p in posted] == [
        ("解东小区3栋群", "g1", ("3栋", "4栋"), "staff1")
    ]


def test_the_group_text_fits_a_post_and_ends_with_the_way_to_the_account() -> None:
    here = "解东社区"
    short = group_post(topic="反诈", title="反诈提醒", text="陌生来电一律挂断。", community=here)
    assert short.splitlines() == ["【反诈提醒】", "陌生来电一律挂断。", reach_line(here)]
    long = group_post(topic="防溺水", title="暑假到了，看好孩子", text=TEXT * 3, community=here)
    assert len(long) <= LONGEST and long.endswith(reach_line(here))
    body = long.splitlines()[1]
    assert body.endswith(("。", "…")) and len(body) > 60
    assert long.startswith("【防溺水】暑假到了，看好孩子\n")


def test_poster_lines_fit_and_never_start_with_a_closing_mark() -> None:
    font = locate(None)
    assert font is not None
    face = font.at(44)
    lines = wrap(TEXT * 3, face, 600, 6)
    assert len(lines) == 6 and lines[-1].endswith("…")
    assert all(face.getlength(line) <= 600 for line in lines)
    assert not any(line[:1] in "，。、：”" for line in lines)


def test_no_chinese_font_is_told_to_the_operator_by_its_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not DEJAVU.is_file():
        pytest.skip("no DejaVu font to stand for a font without Chinese")
    with caplog.at_level(logging.WARNING, logger="bot.campaigns.fonts"):
        assert locate(DEJAVU, system=False, packaged=False) is None
    assert f"POSTER_FONT={DEJAVU} does not draw Chinese" in caplog.text
    assert "set POSTER_FONT" in caplog.text
    packaged = locate(DEJAVU, system=False)  # a fresh clone without system fonts
    assert packaged is not None and packaged.path.endswith("KurintoSansSC-Rg.ttf")
    assert isinstance(FontFile(packaged.path).at(20), ImageFont.FreeTypeFont)


async def test_groups_from_the_command_line(db_url: str, aiohttp_client: Client) -> None:
    from tests.test_broadcasts import cli

    wechat = await service(aiohttp_client, db_url)  # the catalog is imported at start-up
    added = await cli(
        db_url, "groups", "add", "解东小区3栋群", "--grid", "g1", "--buildings", "3栋,4栋"
    )
    assert added.startswith("0\nadded: group 1 '解东小区3栋群' (3栋, 4栋)"), added
    assert "NAME: a group '解东小区3栋群' exists already" in await cli(
        db_url, "groups", "add", "解东小区3栋群", "--grid", "g1", "--buildings", "3栋"
    )
    assert "--grid: no grid 'g9'" in await cli(
        db_url, "groups", "add", "八栋群", "--grid", "g9", "--buildings", "8栋"
    )
    listed = await cli(db_url, "groups", "list")
    assert listed == "0\n1\tg1\t解东小区3栋群\t3栋,4栋\n", listed
    staff = await login(wechat, "staff1")
    try:
        page = await (await staff.get("/console/groups")).text()
    finally:
        await staff.close()
    assert 'value="3栋、4栋"' in page
