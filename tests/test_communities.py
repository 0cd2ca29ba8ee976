"""Several communities in one deployment: each has its own account, catalog, staff
and units, and nothing of one is visible to, or can be changed from, another: not
through the webhook, not through the web side, not by chat, not from the CLI.

Both communities use the same unit ids (``property``, ``law`` …) and the same staff
usernames on purpose: isolation must come from the community, not from names that
happen to differ.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot import keys
from bot.app import create_app
from bot.cli import main
from bot.communities import read_communities_file
from bot.config import ConfigError, Settings, load_settings
from storage import models
from storage.repositories.units import create_invite, unit_row
from tests.fake_clock import FakeClock
from tests.fake_wechat import FakeWeChat, fake_wechat_fixture
from tests.ordering_catalog import write_catalog
from tests.passwords import password_hash
from tests.test_console import CSRF, PASSWORD
from tests.test_ordering import CODE
from tests.webhook_app import NO_QUIET_HOURS, Client
from tests.wechat_server import WeChatServer

fake_wechat = fake_wechat_fixture()

TESTVILLE_TOKEN = "testville-token-1"
RIVERSIDE_TOKEN = "riverside-token-2"


def write_riverside(directory: Path) -> Path:
    """The ordering test catalog as another community's, same unit ids included."""
    directory.mkdir(exist_ok=True)
    text = write_catalog(directory).read_text(encoding="utf-8")
    text = text.replace("id: testville", "id: riverside").replace("测试社区", "河畔社区")
    text = text.replace("阳光物业", "河畔物业")
    path = directory / "riverside.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_communities(tmp_path: Path) -> Path:
    (tmp_path / "t").mkdir()
    write_catalog(tmp_path / "t")
    write_riverside(tmp_path / "r")
    path = tmp_path / "communities.toml"
    path.write_text(
        '[[community]]\nid = "testville"\ncatalog = "t/catalog.yaml"\n\n'
        '[[community]]\nid = "riverside"\ncatalog = "r/riverside.yaml"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class World:
    testville: WeChatServer
    riverside: WeChatServer
    fake: FakeWeChat


@pytest.fixture
async def world(
    db_url: str,
    aiohttp_client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_wechat: FakeWeChat,
) -> World:
    """Testville without a WeChat API account (replies kept locally), riverside with
    one (the fake WeChat API): each community's own set-up."""
    monkeypatch.setenv("TESTVILLE_WECHAT_TOKEN", TESTVILLE_TOKEN)
    monkeypatch.setenv("RIVERSIDE_WECHAT_TOKEN", RIVERSIDE_TOKEN)
    monkeypatch.setenv("RIVERSIDE_WECHAT_APP_ID", fake_wechat.app_id)
    monkeypatch.setenv("RIVERSIDE_WECHAT_APP_SECRET", fake_wechat.app_secret)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        communities_file=write_communities(tmp_path),
        wechat_api_base=fake_wechat.base_url,
        scheduler_interval=0.2,
        quiet_hours=NO_QUIET_HOURS,  # the wall clock: the test must pass at night too
        dev_tools="on",  # testville's late replies are read from /dev/outbox
    )
    client = await aiohttp_client(create_app(settings))
    return World(
        WeChatServer(client, TESTVILLE_TOKEN, path="/wechat/testville"),
        WeChatServer(client, RIVERSIDE_TOKEN, path="/wechat/riverside"),
        fake_wechat,
    )


async def say(wechat: WeChatServer, openid: str, *lines: str) -> str:
    reply = ""
    for line in lines:
        answer = await wechat.text(openid, line)
        assert answer.status == 200, answer.body
        reply = answer.text
    return reply


async def place_repair(wechat: WeChatServer, openid: str) -> str:
    reply = await say(wechat, openid, "水管爆了", "1栋", "13899990000", "确认")
    found = CODE.search(reply)
    assert found is not None, reply
    return found[1]


async def add_user(
    world: World, community: str, username: str, role: str, unit: str | None = None
) -> None:
    async with world.testville.client.app[keys.SESSIONMAKER].begin() as session:
        unit_id = None
        if unit:
            row = await unit_row(session, community, unit)
            assert row is not None
            unit_id = row.id
        session.add(
            models.User(
                community_id=community,
                username=username,
                role=role,
                unit_id=unit_id,
                password_hash=await password_hash(PASSWORD + community),
            )
        )


async def browser_for(
    world: World, community: str, username: str, password: str | None = None
) -> tuple[aiohttp.ClientSession, int]:
    browser = aiohttp.ClientSession(
        base_url=str(world.testville.client.make_url("/")),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )
    reply = await browser.post(
        "/login",
        data={
            "username": username,
            "password": password or PASSWORD + community,
            "community": community,
        },
        allow_redirects=False,
    )
    return browser, reply.status


async def status_of(world: World, code: str) -> str:
    async with world.testville.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code))
    assert order is not None
    return order.status


# --- the webhook -------------------------------------------------------------------------


async def test_each_account_answers_on_its_own_path_with_its_own_token(world: World) -> None:
    welcome_r = await world.riverside.event("o_new", "subscribe")
    welcome_t = await world.testville.event("o_new", "subscribe")
    assert "河畔社区" in welcome_r.text and "测试社区" not in welcome_r.text
    assert "测试社区" in welcome_t.text and "河畔社区" not in welcome_t.text

    # A message signed with testville's token, sent to riverside's URL: refused.
    forged = WeChatServer(world.testville.client, TESTVILLE_TOKEN, path="/wechat/riverside")
    assert (await forged.text("o_new", "你好")).status == 403
    nowhere = WeChatServer(world.testville.client, TESTVILLE_TOKEN, path="/wechat/nowhere")
    assert (await nowhere.text("o_new", "你好")).status == 403
    # /wechat is the first community's (the default), as with a single community.
    default = WeChatServer(world.testville.client, TESTVILLE_TOKEN)
    assert "测试社区" in (await default.event("o_other", "subscribe")).text

    # WeChat's URL check, per account.
    query = world.riverside.query()
    echo = await world.testville.client.get(
        "/wechat/riverside", params={**query, "echostr": "hello-riverside"}
    )
    assert echo.status == 200 and await echo.text() == "hello-riverside"
    wrong = await world.testville.client.get("/wechat/testville", params={**query, "echostr": "x"})
    assert wrong.status == 403


async def test_the_same_openid_is_two_residents_in_two_communities(world: World) -> None:
    """Openids belong to an account; a conversation in one community does not go on
    in the other."""
    started = await say(world.riverside, "o_same", "水管爆了")
    assert "帮您预约" in started or "几栋" in started or "栋" in started, started
    # In testville the same openid has no conversation going: "1栋" is no answer there.
    elsewhere = await say(world.testville, "o_same", "确认")
    assert "订单号" not in elsewhere
    code = CODE.search(await say(world.riverside, "o_same", "1栋", "13899990000", "确认"))
    assert code is not None
    async with world.testville.client.app[keys.SESSIONMAKER]() as session:
        order = await session.scalar(select(models.Order).where(models.Order.code == code[1]))
        residents = (
            await session.scalars(
                select(models.Resident.community_id).where(models.Resident.openid == "o_same")
            )
        ).all()
    assert order is not None and order.community_id == "riverside"
    assert sorted(residents) == ["riverside", "testville"]


# --- the web side --------------------------------------------------------------------------


async def test_staff_and_units_see_and_act_on_their_own_community_only(world: World) -> None:
    mine = await place_repair(world.testville, "o_t")
    theirs = await place_repair(world.riverside, "o_r")
    for community in ("testville", "riverside"):
        await add_user(world, community, "staff1", "staff")
        await add_user(world, community, "property1", "unit", "property")

    staff, status = await browser_for(world, "testville", "staff1")
    assert status == 302
    board = await (await staff.get("/console")).text()
    assert mine in board and theirs not in board
    assert "河畔" not in board
    assert (await staff.get(f"/console/orders/{theirs}")).status == 404
    token = CSRF.search(board)[1]  # type: ignore[index]
    for action in ("dispatch", "close", "escalate"):
        moved = await staff.post(
            f"/console/orders/{theirs}/{action}", data={"csrf": token}, allow_redirects=False
        )
        assert moved.status == 404, action
    catalog = await (await staff.get("/console/catalog.yaml")).text()
    assert "testville" in catalog and "riverside" not in catalog
    await staff.close()

    unit, status = await browser_for(world, "testville", "property1")
    assert status == 302
    portal = await (await unit.get("/portal")).text()
    assert theirs not in portal
    token = CSRF.search(portal)[1]  # type: ignore[index]
    accepted = await unit.post(
        f"/console/orders/{theirs}/accept", data={"csrf": token}, allow_redirects=False
    )
    assert accepted.status == 404
    await unit.close()
    assert await status_of(world, theirs) != "accepted"

    # Same username, other community: its own password, its own orders.
    _, refused = await browser_for(world, "riverside", "staff1", PASSWORD + "testville")
    assert refused == 401
    theirs_staff, status = await browser_for(world, "riverside", "staff1")
    assert status == 302
    board = await (await theirs_staff.get("/console")).text()
    assert theirs in board and mine not in board and "河畔社区" in board
    catalog = await (await theirs_staff.get("/console/catalog.yaml")).text()
    assert "riverside" in catalog and "testville" not in catalog
    await theirs_staff.close()


async def test_public_pages_show_one_community_each(world: World) -> None:
    client = world.testville.client
    riverside = await (await client.get("/public/riverside")).text()
    testville = await (await client.get("/public/testville")).text()
    assert "河畔物业" in riverside and "阳光物业" not in riverside
    assert "阳光物业" in testville and "河畔物业" not in testville
    assert "阳光物业" in await (await client.get("/services")).text()  # the default
    assert "河畔物业" in await (await client.get("/services/riverside")).text()
    assert (await client.get("/public/nowhere")).status == 404
    front = await (await client.get("/")).text()
    assert 'href="/public/riverside"' in front and 'href="/services/testville"' in front
    # Each community's webhook address is the operator's: serve's banner prints it.


# --- by chat ---------------------------------------------------------------------------------


async def test_a_unit_member_cannot_act_on_another_communitys_order_by_chat(
    world: World,
) -> None:
    theirs = await place_repair(world.riverside, "o_r")
    async with world.testville.client.app[keys.SESSIONMAKER].begin() as session:
        unit = await unit_row(session, "testville", "property")
        assert unit is not None
        code, _ = await create_invite(session, unit, ttl=dt.timedelta(hours=1), created_by="t")
    # Testville's invite does not bind anyone in riverside ...
    refused = await say(world.riverside, "o_worker", f"绑定 {code}")
    assert "阳光物业" not in refused and "河畔物业" not in refused
    # ... and binds in testville.
    assert "阳光物业" in await say(world.testville, "o_worker", f"绑定 {code}")

    on_own_path = await say(world.testville, "o_worker", f"接单 {theirs}")
    on_their_path = await say(world.riverside, "o_worker", f"接单 {theirs}")
    assert theirs in on_own_path and "已接单" not in on_own_path
    assert "已接单" not in on_their_path
    assert await status_of(world, theirs) != "accepted"


# --- the background workers --------------------------------------------------------------


async def test_each_communitys_notifications_go_out_through_its_own_account(
    world: World,
) -> None:
    """Staff answers to 转人工: riverside's through its WeChat API account, testville's
    (no API account) kept in its own local outbox, never the other way round."""
    world.fake.add_user("o_r")
    for community, wechat, openid in (
        ("riverside", world.riverside, "o_r"),
        ("testville", world.testville, "o_t"),
    ):
        await say(wechat, openid, "转人工 请回个电话")
        await add_user(world, community, "staff1", "staff")
        browser, _ = await browser_for(world, community, "staff1")
        queue = await (await browser.get("/console/handoffs")).text()
        handoff = re.search(r"/console/handoffs/(\d+)/answer", queue)
        assert handoff is not None, queue[:500]
        answered = await browser.post(
            f"/console/handoffs/{handoff[1]}/answer",
            data={"csrf": CSRF.search(queue)[1], "text": f"{community}的同事马上打给您。"},  # type: ignore[index]
            allow_redirects=False,
        )
        assert answered.status == 302
        await browser.close()

    client = world.testville.client
    for _ in range(100):
        local = await (await client.get("/dev/outbox?community=testville&openid=o_t")).json()
        if world.fake.sent and local["messages"]:
            break
        await asyncio.sleep(0.1)
    sent = [(m["touser"], m["text"]["content"]) for m in world.fake.sent]
    assert sent == [("o_r", "社区工作人员回复：riverside的同事马上打给您。")]
    assert [m["text"] for m in local["messages"]] == [
        "社区工作人员回复：testville的同事马上打给您。"
    ]
    # Riverside has an API account: it has no local outbox to read.
    assert (await client.get("/dev/outbox?community=riverside&openid=o_r")).status == 404


async def test_a_process_leaves_alone_the_rows_of_communities_it_does_not_serve(
    world: World, db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    """Two deployments on one database (or a rolling restart adding a community): a
    process serving testville only must neither fire nor fail riverside's reminders
    and notifications, even as the leader, even when they are due."""
    await place_repair(world.riverside, "o_r")
    days_later = FakeClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    testville_only = create_app(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=db_url,
            catalog_path=tmp_path / "t" / "catalog.yaml",
            wechat_token=TESTVILLE_TOKEN,
            quiet_hours=NO_QUIET_HOURS,
        ),
        clock=days_later,
    )
    await aiohttp_client(testville_only)
    scheduler = testville_only[keys.SCHEDULER]
    await scheduler.run_now("reminders")
    await scheduler.run_now("outbox")
    async with testville_only[keys.SESSIONMAKER]() as session:
        reminders = set(
            (
                await session.scalars(
                    select(models.Reminder.status).where(
                        models.Reminder.community_id == "riverside"
                    )
                )
            ).all()
        )
        notifications = set(
            (
                await session.scalars(
                    select(models.OutboxMessage.status).where(
                        models.OutboxMessage.community_id == "riverside"
                    )
                )
            ).all()
        )
    assert reminders == {"pending"}
    assert "failed" not in notifications


# --- the CLI -----------------------------------------------------------------------------------


async def test_the_cli_asks_which_community_and_shows_only_that_one(
    world: World, db_url: str, tmp_path: Path
) -> None:
    mine = await place_repair(world.testville, "o_t")
    theirs = await place_repair(world.riverside, "o_r")
    several = {"DATABASE_URL": db_url, "COMMUNITIES_FILE": str(tmp_path / "communities.toml")}

    def orders(*options: str, env: dict[str, str] = several) -> tuple[int, str]:
        result = CliRunner().invoke(main, [*options, "orders", "list"], env=env)
        return result.exit_code, result.output

    code, output = await asyncio.to_thread(orders)
    assert code != 0 and "--community" in output and "riverside" in output
    code, output = await asyncio.to_thread(orders, "--community", "riverside")
    assert code == 0 and theirs in output and mine not in output
    code, output = await asyncio.to_thread(orders, "--community", "nowhere")
    assert code != 0 and "nowhere" in output
    # Another community's broadcast is "not there", not shown.
    async with world.testville.client.app[keys.SESSIONMAKER].begin() as session:
        notice = models.Broadcast(community_id="testville", topic="反诈", title="t", text="x")
        session.add(notice)
        await session.flush()
        notice_id = str(notice.id)

    def status(community: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["--community", community, "broadcast", "status", notice_id], env=several
        )
        return result.exit_code, result.output

    code, output = await asyncio.to_thread(status, "riverside")
    assert code != 0 and "no broadcast" in output
    code, output = await asyncio.to_thread(status, "testville")
    assert code == 0, output
    # A single-community set-up (no COMMUNITIES_FILE) that moved from one catalog to
    # another: the one imported last, without asking.
    code, output = await asyncio.to_thread(orders, env={"DATABASE_URL": db_url})
    assert code == 0 and theirs in output and mine not in output


async def test_order_menu_chat_talks_to_the_chosen_communitys_account(
    world: World, tmp_path: Path
) -> None:
    """``order-menu --community riverside chat`` signs with riverside's token and
    posts to its path: riverside's own welcome, not the default community's."""
    base = str(world.riverside.client.make_url("/")).rstrip("/")

    def chat(community: str) -> str:
        result = CliRunner().invoke(
            main,
            ["--community", community, "chat", "--as", "o_cli", "--url", base],
            input="/follow\n/quit\n",
            env={"COMMUNITIES_FILE": str(tmp_path / "communities.toml")},
        )
        assert result.exit_code == 0, result.output
        return result.output

    riverside = await asyncio.to_thread(chat, "riverside")
    assert "河畔社区" in riverside and "测试社区" not in riverside
    assert "测试社区" in await asyncio.to_thread(chat, "testville")


# --- configuration ---------------------------------------------------------------------------


def test_a_bad_communities_file_is_refused_naming_each_problem(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    write_catalog(tmp_path / "t")
    path = tmp_path / "communities.toml"
    path.write_text(
        '[[community]]\nid = "testville"\ncatalog = "t/catalog.yaml"\n\n'
        '[[community]]\nid = "testville"\ncatalog = "t/catalog.yaml"\n\n'
        '[[community]]\nid = "Bad Id"\ncatalog = "t/catalog.yaml"\n\n'
        '[[community]]\nid = "ghost"\ncatalog = "missing.yaml"\n\n'
        '[[community]]\nid = "half"\ncatalog = "t/catalog.yaml"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        read_communities_file(path, {"HALF_WECHAT_APP_ID": "wx123"})
    message = str(raised.value)
    assert "community[1].id='testville': listed twice" in message
    assert "community[2].id='Bad Id'" in message
    assert "community[3].catalog='missing.yaml': no such file" in message
    assert "HALF_WECHAT_APP_ID and HALF_WECHAT_APP_SECRET" in message

    path.write_text("this is not toml [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_communities_file(path, {})

    with pytest.raises(Exception, match="not both"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            catalog_path=tmp_path / "t" / "catalog.yaml",
            communities_file=tmp_path / "communities.toml",
        )
    # A single community's account left set would be silently ignored: refused.
    with pytest.raises(ConfigError, match="WECHAT_TOKEN, WECHAT_APP_SECRET: with COMMUNITIES"):
        load_settings(
            _env_file=None,
            communities_file=tmp_path / "communities.toml",
            wechat_token="old-token",
            wechat_app_secret="old-secret",
        )


async def test_a_catalog_of_another_community_than_its_entry_stops_the_start(
    db_url: str, aiohttp_client: Client, tmp_path: Path
) -> None:
    write_riverside(tmp_path / "r")
    path = tmp_path / "communities.toml"
    path.write_text('[[community]]\nid = "testville"\ncatalog = "r/riverside.yaml"\n')
    settings = Settings(_env_file=None, database_url=db_url, communities_file=path)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="is for community 'riverside'"):
        await aiohttp_client(create_app(settings))


async def test_serve_tells_each_communitys_server_url(world: World) -> None:
    from bot.serve import banner

    text = banner(world.testville.client.app, "https://bot.example.org")
    assert "https://bot.example.org/wechat/testville" in text
    assert "https://bot.example.org/wechat/riverside" in text
    assert "河畔社区" in text and "测试社区" in text
    assert RIVERSIDE_TOKEN not in text  # a configured token is never printed
