"""Issue 17, end to end through the real /wechat webhook: the bot understands what a
resident is doing (greeting, thanking, rating, changing their mind, calling for help,
asking a question), not only which service they want.

Each test is one bullet of the issue's list of defects; every one failed on the code
before the dialogue-act layer (the replies then were 「这个需求我已经记下了」, 「请回复1到N
之间的序号」, a lecture offered to a fraud victim, a second repair order …).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot import keys
from bot.cli import main
from storage import models
from storage.order_status import OrderStatus
from tests.ordering_catalog import write_catalog
from tests.test_console import add_user, login
from tests.test_ordering import CODE, orders_of, say
from tests.test_units import invite, outbox_texts, place
from tests.webhook_app import Client, start
from tests.wechat_server import WeChatServer


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    return write_catalog(tmp_path)


async def bot(aiohttp_client: Client, db_url: str, catalog_file: Path) -> WeChatServer:
    return await start(aiohttp_client, db_url, catalog_path=catalog_file)


async def rows(wechat: WeChatServer, model: type[models.Base]) -> list[object]:
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        return list((await session.scalars(select(model))).all())


async def needs_listed(db_url: str) -> str:
    """``order-menu needs list``, as staff run it."""
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["needs", "list"], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    return result.output


async def speak(wechat: WeChatServer, openid: str, words: str) -> str:
    """A voice message as WeChat delivers it, with its speech recognised."""
    xml = wechat.xml(
        openid, "voice", MediaId="m", Format="amr", Recognition=words, MsgId=wechat.new_msg_id()
    )
    return (await wechat.post(xml)).text


async def completed_repair(wechat: WeChatServer, db_url: str, resident: str) -> str:
    """A repair ordered by ``resident`` and completed by the property company's member."""
    code = await place(wechat, resident)
    worker = f"{resident}_worker"
    await say(wechat, worker, f"绑定 {await invite(db_url, 'property')}")
    assert "已接单" in await say(wechat, worker, f"接单 {code}")
    assert "已开始" in await say(wechat, worker, f"开始 {code}")
    assert "已完成" in await say(wechat, worker, f"完成 {code} 换了水管")
    return code


# --- 你好, 在吗, 谢谢, 5分 ------------------------------------------------------------------


async def test_greetings_thanks_and_a_rating_are_answered_and_not_kept_as_needs(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    hello = await say(wechat, "o_a", "你好")
    assert "您好" in hello and "1. 物业服务" in hello and "记下了" not in hello
    there = await say(wechat, "o_b", "在吗？")
    assert "您好" in there and "记下了" not in there
    assert "不客气" in await say(wechat, "o_c", "谢谢")
    assert "没有要评价的订单" in await say(wechat, "o_d", "5分")
    assert "好的" in await say(wechat, "o_e", "好的 收到")
    assert not await rows(wechat, models.UnmetNeed)


async def test_a_day_of_chatting_leaves_only_real_requests_on_the_needs_list(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    for openid, line in [
        ("o_1", "你好"),
        ("o_2", "早上好🌹🌹"),
        ("o_3", "辛苦了！"),
        ("o_4", "👍👍"),
        ("o_5", "社区几点上班？"),
        ("o_6", "今天广场上跳舞的人好多啊，好热闹😄"),
        ("o_7", "附近哪家米粉好吃，想点个外卖"),
        ("o_8", "想学跳广场舞，社区能不能组织一下"),
        ("o_9", "5分"),
    ]:
        await say(wechat, openid, line)
    listed = await needs_listed(db_url)
    assert "想学跳广场舞" in listed
    assert len([line for line in listed.splitlines() if line.strip()]) == 1, listed


# --- after a numbered list -----------------------------------------------------------------


async def test_a_new_sentence_at_a_numbered_list_is_understood_as_what_it_is(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "1. 物业服务" in await say(wechat, "o_list", "菜单")
    repair = await say(wechat, "o_list", "家里灯不亮了")
    assert "请回复1到" not in repair and "水电维修" in repair

    # The simulator's own voice example: the health services are offered.
    assert "1. 物业服务" in await say(wechat, "o_voice", "菜单")
    spoken = await speak(wechat, "o_voice", "我妈走不动了能不能让医生来家里。")
    assert "请回复1到" not in spoken and "大型义诊" in spoken

    assert "1. 物业服务" in await say(wechat, "o_fraud", "菜单")
    fraud = await say(wechat, "o_fraud", "我刚被骗了两万块")
    assert "拨打110" in fraud and "96110" in fraud and "请回复1到" not in fraud

    # A pick that misses is still asked again (a number out of range).
    await say(wechat, "o_miss", "菜单")
    assert "请回复1到" in await say(wechat, "o_miss", "9")


# --- emergencies ------------------------------------------------------------------------------


async def test_emergencies_get_what_to_do_now_and_staff_are_alerted(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    fraud = await say(wechat, "o_f", "我被人骗了钱怎么办")
    assert "拨打110" in fraud and "96110" in fraud and "0773-2800123" in fraud
    assert "讲座" not in fraud and "请回复" not in fraud
    assert "拨打110" in await say(wechat, "o_p", "我要报警")
    help_ = await say(wechat, "o_h", "救命")
    assert "拨打110" in help_ and "通知社区工作人员" in help_
    assert "119" in await say(wechat, "o_fire", "楼下着火了，好大的烟")

    remarks = await rows(wechat, models.ResidentRemark)
    assert sorted((r.openid, r.detail) for r in remarks) == [  # type: ignore[attr-defined]
        ("o_f", "fraud"),
        ("o_fire", "fire"),
        ("o_h", "danger"),
        ("o_p", "crime"),
    ]
    alerts = await outbox_texts(wechat, "community")  # the community's own unit: staff
    assert len([a for a in alerts if "【紧急】" in a]) == 4
    assert len(await rows(wechat, models.Handoff)) == 4
    assert not await rows(wechat, models.UnmetNeed)


async def test_numbers_in_an_address_or_a_price_raise_no_alarm(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_num", "水管爆了")
    assert "手机号码" in await say(wechat, "o_num", "3栋120")  # the address, not the ambulance
    assert "救护车" not in await say(wechat, "o_fee", "物业费一个月交120块正常吗")
    assert not await rows(wechat, models.ResidentRemark)


async def test_a_unit_reporting_gas_in_its_completion_note_completes_the_order(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    code = await place(wechat, "o_gas")
    await say(wechat, "o_gasman", f"绑定 {await invite(db_url, 'property')}")
    await say(wechat, "o_gasman", f"接单 {code}", f"开始 {code}")
    done = await say(wechat, "o_gasman", f"完成 {code} 不是水管，是燃气味，已关阀并通知燃气公司")
    assert "已完成" in done and "119" not in done


async def test_an_emergency_mid_form_is_answered_first_and_the_form_goes_on(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_mid", "水管爆了")
    fire = await say(wechat, "o_mid", "厨房着火了！")
    assert "119" in fire
    assert "手机号码" in await say(wechat, "o_mid", "1栋")  # the form was kept


# --- after completion: outcomes and ratings in words; cancelling in words ---------------------


async def test_satisfied_in_words_rates_the_completed_order_instead_of_ordering_again(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    code = await completed_repair(wechat, db_url, "o_done")
    reply = await say(wechat, "o_done", "师傅来修好了，很满意")
    assert "5分" in reply and "帮您预约" not in reply
    [order] = await orders_of(wechat)
    assert order.code == code and order.status == OrderStatus.RATED and order.rating == 5


async def test_a_bare_rating_rates_the_order_just_completed(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await completed_repair(wechat, db_url, "o_stars")
    assert "4分" in await say(wechat, "o_stars", "给4分吧")
    [order] = await orders_of(wechat)
    assert order.rating == 4


async def test_not_satisfied_gets_an_apology_and_a_person_then_the_rating(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await completed_repair(wechat, db_url, "o_unhappy")
    reply = await say(wechat, "o_unhappy", "修好了，不过不太满意")
    assert "对不起" in reply and "太好了" not in reply and "几分" in reply
    assert "3分" in await say(wechat, "o_unhappy", "还行吧")
    [order] = await orders_of(wechat)
    assert order.rating == 3
    [handoff] = await rows(wechat, models.Handoff)
    assert "不太满意" in handoff.text  # type: ignore[attr-defined]


async def test_their_no_show_is_not_read_as_the_resident_cancelling(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await place(wechat, "o_wait")
    reply = await say(wechat, "o_wait", "你们的人说好今天来，又不来了")
    assert "取消" not in reply
    assert "已经取消" not in await say(wechat, "o_wait", "是啊")
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.DISPATCHED


async def test_not_fixed_reaches_the_order_and_its_unit_not_a_new_order(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    code = await place(wechat, "o_leak")
    reply = await say(wechat, "o_leak", "师傅来过了，还在漏")
    assert "阳光物业" in reply and "帮您预约" not in reply
    assert len(await orders_of(wechat)) == 1
    told = await outbox_texts(wechat, "property")
    assert any(code in text and "还在漏" in text for text in told), told


async def test_calling_off_a_booking_in_ones_own_words_cancels_it_after_confirming(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_mum", "想去义诊看看", "1", "2", "13812345678")
    found = CODE.search(await say(wechat, "o_mum", "确认"))
    assert found is not None
    asked = await say(wechat, "o_mum", "我妈那天去不了了，不去义诊了")
    assert found[1] in asked and "取消" in asked and "帮您预约" not in asked
    assert "已经取消" in await say(wechat, "o_mum", "对，取消吧")
    [order] = await orders_of(wechat)
    assert order.status == OrderStatus.CANCELLED
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        first = await session.scalar(select(models.ItemSlot).where(models.ItemSlot.key == "first"))
    assert first is not None and first.booked == 0  # the places are free again


# --- answering the bot's questions ------------------------------------------------------------


async def test_optional_questions_take_skip_words_in_their_common_forms(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_skip", "楼上半夜太吵了，噪音扰民")
    assert "手机" in await say(wechat, "o_skip", "3栋")
    notes = await say(wechat, "o_skip", "不想留")
    assert "号码好像不对" not in notes
    summary = await say(wechat, "o_skip", "不留了")
    assert "请核对" in summary and "电话" not in summary
    assert CODE.search(await say(wechat, "o_skip", "确认"))


async def test_a_question_at_a_prompt_is_answered_and_not_saved_as_the_answer(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_q", "水管爆了")
    answered = await say(wechat, "o_q", "社区几点上班？")
    assert "8:30" in answered and "哪栋楼" in answered  # the FAQ, then the same question
    unknown = await say(wechat, "o_q", "现在是寒假，暑假才有吗？")
    assert "工作人员" in unknown and "哪栋楼" in unknown
    await say(wechat, "o_q", "1栋", "13812345678")
    summary = await say(wechat, "o_q", "确认")
    assert CODE.search(summary)
    [order] = await orders_of(wechat)
    assert order.answers["building"] == "1栋"
    handoffs = await rows(wechat, models.Handoff)
    assert ["暑假才有吗" in h.text for h in handoffs] == [True]  # type: ignore[attr-defined]


async def test_thanks_or_a_rating_typed_at_a_free_question_are_not_taken_as_the_answer(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪栋楼" in await say(wechat, "o_free", "楼上半夜太吵了，噪音扰民")
    thanks = await say(wechat, "o_free", "谢谢你们")
    assert "不客气" in thanks and "哪栋楼" in thanks
    assert not await rows(wechat, models.ResidentRemark)  # thanks to no one in particular
    rated = await say(wechat, "o_free", "5分")  # nothing to rate: the form is kept
    assert "哪栋楼" in rated and "放下" not in rated
    await say(wechat, "o_free", "3栋", "不想留", "没有")
    assert CODE.search(await say(wechat, "o_free", "确认"))
    [order] = await orders_of(wechat)
    assert order.answers["building"] == "3栋"


async def test_calling_off_a_booking_while_making_another_leaves_only_the_new_one(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_two", "想听健康讲座", "1", "2", "13812345678", "确认")
    assert "几位" in await say(wechat, "o_two", "想去义诊看看", "1")
    assert "先不办了" in await say(wechat, "o_two", "算了，不去了")
    [lecture] = await orders_of(wechat)
    assert lecture.status == OrderStatus.DISPATCHED  # the lecture stays booked


async def test_calling_off_the_booking_being_made_leaves_it(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "哪一场" in await say(wechat, "o_off", "想去义诊看看")
    left = await say(wechat, "o_off", "我妈那天去不了了，不去义诊了")
    assert "先不办了" in left
    assert not await orders_of(wechat)
    assert "机器人" in await say(wechat, "o_off", "你是机器人吗")


async def test_people_in_words_and_a_phone_number_spoken_digit_by_digit(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "几位" in await say(wechat, "o_words", "想听健康讲座", "1")
    assert "手机" in await say(wechat, "o_words", "就我妈一个人")
    twelve = await speak(wechat, "o_words", "幺三八七七三零零一二三四。")
    assert "12位" in twelve
    summary = await speak(wechat, "o_words", "幺三八零零一二三四五六。")
    assert "1人" in summary and "138****3456" in summary


async def test_the_third_miss_of_a_question_offers_a_way_out(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_stuck", "水管爆了", "1栋")
    first = await say(wechat, "o_stuck", "不记得了")
    second = await say(wechat, "o_stuck", "不知道")
    third = await say(wechat, "o_stuck", "忘了")
    assert "转人工" not in first + second
    assert "转人工" in third and "取消" in third


async def test_a_complaint_about_corrupt_staff_goes_to_the_confidential_item_only(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    reply = await say(wechat, "o_secret", "我要投诉社区工作人员吃拿卡要，办低保还要收红包")
    if "是不是这一项" in reply:
        reply = await say(wechat, "o_secret", "是")
    assert "廉情监督反映" in reply
    assert not await rows(wechat, models.Handoff)  # every staff member reads those
    assert not await rows(wechat, models.ResidentRemark)


async def test_asking_for_a_person_mid_form_tells_staff_what_was_being_booked(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_person", "水管爆了")
    assert "工作人员" in await say(wechat, "o_person", "转人工")
    [handoff] = await rows(wechat, models.Handoff)
    assert "当时正在预约「水电维修」" in handoff.text  # type: ignore[attr-defined]
    assert "order." not in handoff.text  # type: ignore[attr-defined]


async def test_what_the_bot_missed_goes_to_the_learning_inbox(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    assert "请回复序号" in await say(wechat, "o_miss", "想找律师")  # services offered
    assert "先不办了" in await say(wechat, "o_miss", "取消")  # none of them was it
    await say(wechat, "o_miss2", "想听讲座")  # two services offered
    await say(wechat, "o_miss3", "想学跳广场舞，社区能不能组织一下")  # nothing fits
    kept = await rows(wechat, models.InboxMessage)
    reasons = sorted((m.text, m.reason) for m in kept)  # type: ignore[attr-defined]
    assert reasons == sorted(
        [
            ("想找律师", "ambiguous"),
            ("想找律师", "rejected"),
            ("想听讲座", "ambiguous"),
            ("想学跳广场舞，社区能不能组织一下", "none"),
        ]
    )


async def test_a_question_naming_a_service_is_answered_and_the_service_offered(
    db_url: str, aiohttp_client: Client
) -> None:
    """The demo catalog: its FAQ says where to get vaccinated, and it has the service."""
    wechat = await start(aiohttp_client, db_url)
    reply = await say(wechat, "o_ask", "打疫苗在哪里打？")
    assert "要办请回复“是”" in reply and "疫苗" in reply
    assert "帮您预约" in await say(wechat, "o_ask", "是")
    assert "好的" in await say(wechat, "o_ask2", "打疫苗在哪里打？", "不用了")


# --- unit members, praise ------------------------------------------------------------------------


async def test_a_unit_member_asking_for_help_gets_the_units_commands(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    await say(wechat, "o_member", f"绑定 {await invite(db_url, 'property')}")
    member = await say(wechat, "o_member", "帮助")
    assert "阳光物业" in member and "待办" in member and "接单" in member
    assert "菜单" in await say(wechat, "o_resident", "帮助")  # residents keep theirs


async def test_praise_naming_a_unit_is_recorded_for_that_unit_and_shown_to_staff(
    db_url: str, aiohttp_client: Client, catalog_file: Path
) -> None:
    wechat = await bot(aiohttp_client, db_url, catalog_file)
    reply = await say(wechat, "o_praise", "上周阳光物业的师傅修得又快又好，谢谢你们")
    assert "阳光物业" in reply and "帮您预约" not in reply
    [remark] = await rows(wechat, models.ResidentRemark)
    assert remark.kind == "praise"  # type: ignore[attr-defined]
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        unit = await session.get(models.Unit, remark.unit_id)  # type: ignore[attr-defined]
    assert unit is not None and unit.key == "property"
    await add_user(wechat, "staff1", "staff")
    async with await login(wechat, "staff1") as browser:
        page = await (await browser.get("/console/evaluation")).text()
    voices = page.split("居民的评价", 1)[1]
    assert "<td>阳光物业</td><td>1</td><td>0</td>" in voices
    assert "修得又快又好" in voices


async def test_thanks_and_news_that_mention_a_service_are_not_requests_for_it(
    db_url: str, aiohttp_client: Client
) -> None:
    """The demo catalog, whose fire brigade runs drills: praise of one is not an order."""
    wechat = await start(aiohttp_client, db_url)
    reply = await say(wechat, "o_fan", "上周的消防演练搞得真好，感谢消防队")
    assert "消防" in reply and "帮您预约" not in reply and "请回复" not in reply
    [remark] = await rows(wechat, models.ResidentRemark)
    async with wechat.client.app[keys.SESSIONMAKER]() as session:
        unit = await session.get(models.Unit, remark.unit_id)  # type: ignore[attr-defined]
    assert unit is not None and "消防" in unit.name
    assert not await orders_of(wechat) and not await rows(wechat, models.UnmetNeed)
