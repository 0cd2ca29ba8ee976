"""What a resident is doing, read from the wording alone (``catalog.acts``).

Sentences written for these tests, in the ways residents write and speak; each table
pairs a reading that must be made with near misses that must not."""

from __future__ import annotations

import pytest

from catalog.acts import Act, Emergency, emergency_in, read_act


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("救命啊", Emergency.DANGER),
        ("楼下着火了，好大的烟", Emergency.FIRE),
        ("樓下著火了", Emergency.FIRE),  # traditional, as some keyboards write
        ("厨房里一股煤气味，怎么办", Emergency.GAS),
        ("我爸突然晕倒了叫不醒", Emergency.MEDICAL),
        ("隔壁老太太摔了一跤头上流血，躺着起不来", Emergency.MEDICAL),
        ("有人拿着刀在小区门口", Emergency.CRIME),
        ("我要报警", Emergency.CRIME),
        ("我刚被骗了两万块", Emergency.FRAUD),
        ("刚才给骗子转了五千", Emergency.FRAUD),
        ("孙子放学到现在还没回家，电话也打不通", Emergency.MISSING),
        ("有个小孩掉河里了", Emergency.WATER),
        ("电梯坏了，我被困在电梯里", Emergency.DANGER),
        ("有人在撬我家门", Emergency.CRIME),
        ("家里进小偷了", Emergency.CRIME),
        ("电梯门打不开，里面有人", Emergency.DANGER),
        ("刚刚有人冒充公安打电话让我转账", Emergency.FRAUD),
        ("我爸心脏不舒服，喘不过来", Emergency.MEDICAL),
        ("孩子吞了硬币", Emergency.MEDICAL),
        ("我妈突然说不出话，嘴歪了", Emergency.MEDICAL),
        ("救救我", Emergency.DANGER),
        ("快打120", Emergency.MEDICAL),
        ("台风把隔壁的墙吹倒了，压着人了", Emergency.DISASTER),
        ("水淹到二楼了，楼上还有老人", Emergency.DISASTER),
    ],
)
def test_danger_now_is_an_emergency(text: str, kind: Emergency) -> None:
    assert emergency_in(text) is kind
    assert read_act(text).act is Act.EMERGENCY


@pytest.mark.parametrize(
    "text",
    [
        "想请消防队来讲讲怎么预防火灾",  # prevention
        "上周的消防演练搞得真好",  # the past, a drill
        "我怕被骗，想听反诈讲座",  # a fear
        "去年被骗过一次，现在还心有余悸",  # the past
        "想给独居的老妈装个燃气报警器",  # an alarm that is a device
        "烟雾报警器响个不停怎么关",  # ditto
        "邻居被骗了，我想了解下怎么防",  # hearsay
        "我妈的身份证丢了，她腿脚不好",  # a lost card, not a lost person
        "我家猫跑丢了",  # a pet
        "反诈中心的电话是96110吗",  # a number inside another number
        "我的电话是13811012345",
        "燃气表上显示没气了",
        "3栋120",  # an address
        "120栋楼道灯坏了",
        "物业费一个月交120块正常吗",
        "坐120路公交",
        "想学急救，120的那种培训",
        "有心梗病史，在吃阿司匹林",
        "轮胎漏气了",
        "我没被骗",
        "提醒大家千万别被骗了",
        "两个孩子打起来了",
        "楼下两条狗打起来了",
    ],
)
def test_talk_about_danger_is_not_an_emergency(text: str) -> None:
    assert emergency_in(text) is None


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("你好", Act.GREETING),
        ("在吗？", Act.GREETING),
        ("早上好🌹🌹", Act.GREETING),
        ("👋", Act.GREETING),
        ("大家好，我是新搬来的", Act.GREETING),
        ("好的 收到", Act.ACK),
        ("嗯嗯", Act.ACK),
        ("不用了", Act.ACK),
        ("谢谢", Act.THANKS),
        ("辛苦了！👍", Act.THANKS),
        ("👍👍", Act.THANKS),
        ("王师傅帮我把水管修好了，太感谢了", Act.OUTCOME),
        ("民警帮我把电瓶车找回来了，太谢谢了", Act.THANKS),
        ("物业的小伙子半夜来修的，辛苦了", Act.THANKS),
        ("师傅来修好了，很满意", Act.OUTCOME),
        ("还是漏，修了跟没修一样", Act.COMPLAINT),
        ("灯还是不亮", Act.OUTCOME),
        ("5分", Act.RATING),
        ("五星好评", Act.RATING),
        ("3分吧 来得太晚了", Act.RATING),
        ("我妈那天去不了了，不去义诊了", Act.CANCEL),
        ("陪诊不用了，儿子回来了", Act.CANCEL),
        ("你们的人说好今天来，又不来了", Act.OUTCOME),
        ("等了三天也没人来", Act.COMPLAINT),
        ("你们工作人员态度太差了", Act.COMPLAINT),
        ("今天广场上跳舞的人好多啊，好热闹😄", Act.CHAT),
        ("今天天气真好", Act.CHAT),
        ("你是机器人吗", Act.CHAT),
        ("附近哪家米粉好吃", Act.CHAT),
        ("帮我订张去北京的机票", Act.CHAT),
        ("家里水管漏水了", Act.REQUEST),
        ("帮我修一下水管，谢谢", Act.REQUEST),
        ("谢谢，我还想问一下体检的事", Act.REQUEST),
        ("我腿脚不好去不了医院，医生能上门吗", Act.REQUEST),
        ("楼下烧烤店油烟太大，投诉一下", Act.REQUEST),
        ("报修了一个礼拜，到现在还没人处理", Act.COMPLAINT),
        ("老板拖了我三个月工资不给，我该怎么办", Act.REQUEST),  # a third party
    ],
)
def test_the_act_of_a_message(text: str, act: Act) -> None:
    assert read_act(text).act is act, read_act(text)


def test_a_question_about_the_bot_is_told_apart_from_chat() -> None:
    assert read_act("你是机器人吗").about_bot
    assert not read_act("今天天气真好").about_bot


def test_ratings_carry_their_stars_and_outcomes_their_direction() -> None:
    assert read_act("给4分吧").stars == 4
    assert read_act("3分吧 来得太晚了").stars == 3
    assert read_act("修好了，很满意").outcome == "solved"
    assert read_act("修好了，很满意").satisfied is True
    assert read_act("师傅还没来").outcome == "unsolved"


def test_shopping_and_travel_are_off_scope_but_community_services_are_not() -> None:
    assert read_act("想买个血压计，哪个牌子好").off_scope
    assert read_act("哪里能买到正宗的桂花糕").off_scope
    assert not read_act("想请医生上门量血压").off_scope
    assert not read_act("小区停车位怎么申请").off_scope
