"""What the bot says, in one place: short, warm, plain Chinese for elderly residents."""

from __future__ import annotations

import datetime as dt

from catalog.schema import SLOT_QUESTION


def welcome(community: str) -> str:
    return (
        f"您好，欢迎关注{community}！我是社区的服务小助手。\n"
        "有什么需要，直接发文字或语音告诉我就行，比如：\n"
        "“家里水管漏水了”\n“想给老人量量血压”\n"
        "发“帮助”可以看我能做什么。"
    )


def help_text(community: str) -> str:
    return (
        f"我是{community}的服务小助手，您可以：\n"
        "1. 直接说需要什么，文字、语音都行，比如“想请医生上门看看”；\n"
        "2. 发“菜单”看社区能提供的全部服务；\n"
        "3. 发“我的订单”查看办理进度；\n"
        "4. 不想办了，直接说“不去了”“不用来了”；办完了说说怎么样，比如“修好了，很满意”或“5分”；\n"
        "5. 遇到危险请先打110、119、120，也可以告诉我；\n"
        "6. 发“转人工”找社区工作人员。\n"
        "填写过程中随时可以回复“取消”退出。"
    )


VOICE_NOT_HEARD = "抱歉，这条语音我没听清。请您再说一遍，或者打字告诉我。"
IMAGE_RECEIVED = "收到您的图片了。如果是要反映问题，请再用一句话说说是什么情况、在哪里。"
LOCATION_RECEIVED = "收到您的位置了。请再用一句话说说需要什么帮助。"
LINK_RECEIVED = "收到您分享的内容了。需要办事的话，请直接告诉我您需要什么。"
NOT_UNDERSTOOD_KIND = "这类消息我暂时看不懂。请发文字或语音告诉我您需要什么。"


# --- ordering ----------------------------------------------------------------------------

NEED_RECORDED = "这个需求我已经记下了，会转给社区工作人员，看看能不能想办法安排。"
LONG_TEXT_KEPT = (
    "您的留言比较长，我已经原样记下，会转给社区工作人员看。"
    "如果想办具体的事，请用一两句话告诉我，比如“家里水管漏水了”。"
)
LONG_TEXT_SHORTEN = (
    "您的留言比较长，我没能全部看完。请用一两句话告诉我想办的事，比如“家里水管漏水了”。"
)
LONG_ANSWER = "这段话比较长，我没能看完。请用一两句话回答上面的问题；不办了请回复“取消”。"
LEFT = "好的，这次就先不办了。有需要随时再找我。"
NOT_UNDERSTOOD = "不好意思，我没看明白。"
CONFIRM_HOW = "没问题请回复“确认”提交；要改请回复“重新填”；不办了请回复“取消”。"
ATTACHMENT_KEPT = "收到，会一起交给办理的单位。请接着回答上面的问题。"
WAITLIST_ONLY = (
    "近期其他场次也满了。回复“候补”可以加入候补名单，有空位会通知您；回复“取消”就先不办了。"
)
OR_WAITLIST = "请回复序号换一场，或回复“候补”排队等这一场的空位。"

LABELS = {
    SLOT_QUESTION: "时间",
    "people": "人数",
    "phone": "电话",
    "building": "地址",
    "name": "称呼",
    "notes": "补充",
}

WEEKDAYS = "一二三四五六日"


def pick_a_number(count: int) -> str:
    return f"请回复1到{count}之间的序号，比如“1”。不需要了请回复“取消”。"


def slot_label(starts_at: dt.datetime, location: str | None, remaining: int | None) -> str:
    """12月5日（周六）09:00 社区广场 · 还剩12个名额 (``starts_at`` in local time)."""
    weekday = WEEKDAYS[starts_at.weekday()]
    label = f"{starts_at.month}月{starts_at.day}日（周{weekday}）{starts_at:%H:%M}"
    if location:
        label += f" {location}"
    if remaining is not None:
        label += f" · 还剩{remaining}个名额"
    return label


def placed(code: str, next_steps: str | None) -> str:
    then = next_steps or "社区已经把您的需求派给负责的单位，他们会尽快联系您。"
    return f"好的，已经帮您提交了！\n订单号：{code}\n{then}\n发“我的订单”可以随时查看进度。"


def no_slots(title: str) -> str:
    return f"「{title}」近期还没有安排场次。已经帮您记下了，有安排时社区会通知大家。"


def slot_full(remaining: int) -> str:
    if remaining > 0:
        return f"不好意思，这一场只剩{remaining}个名额了，不够您这次的人数。"
    return "不好意思，这一场刚刚约满了。"


def waitlisted(title: str, label: str) -> str:
    return f"已经帮您排上「{title}」{label}的候补，有人退出会第一时间通知您。"


def waitlist_offer(title: str, label: str, until: dt.datetime) -> str:
    """A freed place offered to the first on the waiting list (``until`` local time)."""
    return (
        f"好消息！您候补的「{title}」{label}有空位了，"
        f"名额给您留到{until.month}月{until.day}日{until:%H:%M}。"
        "要的话回复“要”，我接着帮您报名；不需要了回复“不要了”，名额就让给下一位。"
    )


def waitlist_lapsed(title: str) -> str:
    return f"给您留的「{title}」名额已经过了保留时间，让给下一位了。还需要的话，随时跟我说。"


def offer_taken(title: str) -> str:
    return f"太好了，「{title}」的名额给您留着。"


OFFER_DECLINED = "好的，名额已经让给下一位了。有需要随时找我。"


# --- my orders ---------------------------------------------------------------------------

NO_ORDERS = "您还没有订单。直接告诉我需要什么，就能帮您预约。"
ORDERS_HOW = "取消请发“取消订单 订单号”；办完后可以发“评价 订单号 5”打分（1到5分）。"
CANCEL_HOW = "请发“取消订单 订单号”，比如：取消订单 AB23CD。发“我的订单”可以查看订单号。"
RATE_HOW = "请发“评价 订单号 分数 想说的话”，分数是1到5，比如：评价 AB23CD 5 师傅很耐心。"
HANDED_OFF = "已经帮您转给社区工作人员了，他们会尽快在这里回复您，请稍等。"
IN_THREAD = "收到，已经转给社区工作人员，他们会在这里回复您。"


def no_such_order(code: str) -> str:
    return f"没有找到您的订单“{code.strip()[:12]}”。发“我的订单”可以查看您的订单号。"


def cancelled(code: str) -> str:
    return f"订单 {code} 已经取消了。有需要随时再找我。"


def left_shared(code: str) -> str:
    return f"好的，订单 {code} 之后的进展就不再发给您了。问题还会由师傅继续处理。"


def handed_over(code: str) -> str:
    return (
        f"好的，您这边不用管了。订单 {code} 还有其他住户也反映了同样的问题，"
        "会继续为他们办理，之后的进展不再发给您。"
    )


def shared_offer(place: str, code: str) -> str:
    return (
        f"{place}已经有人报了同样的问题（订单号：{code}），师傅已在处理。要不要算您一份？"
        "回复“算我一个”，或回复“单独报”。"
    )


SHARED_HOW = "要算您一份请回复“算我一个”；想自己另外报一单请回复“单独报”。"
SHARED_GONE = "刚才那个订单已经办结了，我们接着帮您单独报。"


def joined_shared(code: str, households: int) -> str:
    return (
        f"好的，已经算您一份！\n订单号：{code}\n现在共{households}户反映了这个问题，"
        f"处理进展会同样发给您。不想再收到可以回复“取消订单 {code}”。"
    )


def cannot_cancel(code: str, status: object) -> str:
    label = getattr(status, "label", status)
    return f"订单 {code} 现在是“{label}”，已经不能在这里取消了。需要帮助请发“转人工”。"


def cannot_rate(code: str, status: object) -> str:
    label = getattr(status, "label", status)
    return f"订单 {code} 现在是“{label}”，办完以后才能评价哦。"


def rated(stars: int) -> str:
    return f"谢谢您的评价（{stars}分）！您的意见会帮助单位把服务做得更好。"


def attached(code: str) -> str:
    return f"收到，已经附到订单 {code} 上，办理的单位能看到。"


# --- units ---------------------------------------------------------------------------------

BIND_HOW = "请发“绑定 邀请码”，邀请码由社区工作人员提供。"
NOT_A_MEMBER = "这个命令是给共建单位工作人员用的。如果您是单位工作人员，请先发“绑定 邀请码”。"
_REASON_EXAMPLES = {
    "退单": "退单 {code} 配件要一个月才到",
    "退回": "退回 {code} 配件要一个月才到",
    "办不了": "办不了 {code} 这是楼体结构问题，需要住建部门鉴定",
}


def needs_reason(word: str, code: str) -> str:
    example = _REASON_EXAMPLES.get(word, f"{word} {{code}} 原因").format(code=code)
    return f"{word}请说明原因，比如：{example}"


_BIND_REFUSED = {
    "unknown": "这个邀请码不对，请核对后再发一次，或者请社区工作人员重新生成。",
    "used": "这个邀请码已经用过了，每个邀请码只能用一次。请找社区工作人员要一个新的。",
    "expired": "这个邀请码已经过期了，请找社区工作人员要一个新的。",
}


def bind_refused(reason: str) -> str:
    return _BIND_REFUSED.get(reason, _BIND_REFUSED["unknown"])


def bound(unit: str) -> str:
    return (
        f"绑定成功！您现在是{unit}的成员，新订单会发给您。\n"
        "可以用：待办、接单 订单号、开始 订单号、完成 订单号 办理情况、退回 订单号 原因。"
    )


def no_unit_order(code: str) -> str:
    return f"没有找到订单 {code}，请核对订单号。发“待办”可以查看贵单位的订单。"


def not_your_order(code: str) -> str:
    return f"订单 {code} 不是派给贵单位的，不能操作。"


def cannot_act(word: str, code: str, status: str) -> str:
    return f"订单 {code} 现在是“{status}”，不能{word}。"


_ACTED = {
    "退单": "已提交退单申请：订单 {code}（{title}）。社区同意前，订单仍由贵单位负责。",
    "办不了": "已记为办不了：订单 {code}（{title}），居民会收到您的说明。",
    "不归我管": "已交回社区改派：订单 {code}（{title}），不会算在贵单位的考评里。",
}
_ACTED["退回"] = _ACTED["退单"]


def acted(word: str, code: str, title: str, phone: str | None, where: str | None) -> str:
    if word in _ACTED:
        return _ACTED[word].format(code=code, title=title)
    lines = [f"已{word}：订单 {code}（{title}），居民会收到通知。"]
    if word == "接单":
        if phone:
            lines.append(f"居民电话：{phone}")
        if where:
            lines.append(f"地址：{where}")
    return "\n".join(lines)


def replies_how(word: str, code: str, replies: list[str]) -> str:
    """The item's 常用回复 for a chat word, one per line, each with what to send."""
    lines = [f"常用回复（回复“{word} {code} 序号”直接用）："]
    lines += [f"{word} {code} {n}：{reply}" for n, reply in enumerate(replies, start=1)]
    return "\n".join(lines)


def no_such_reply(word: str, code: str, replies: list[str]) -> str:
    if not replies:
        return f"这项服务没有设置常用回复，请直接写上办理情况，比如：{word} {code} 已办好"
    return "没有这一条。" + replies_how(word, code, replies)


# --- subscriptions -----------------------------------------------------------------------

UNSUBSCRIBED_ALL = "已经为您退订全部宣传提醒。想再收到时，发“订阅 反诈”这样的话就行。"


def subscriptions(on: list[str], off: list[str]) -> str:
    lines = ["您订阅的宣传提醒：" + ("、".join(on) if on else "暂无")]
    if off:
        lines.append("还可以订阅：" + "、".join(off))
    lines.append("发“订阅 名称”或“退订 名称”修改，比如：退订 垃圾分类。")
    return "\n".join(lines)


def which_topic(verb: str, names: list[str]) -> str:
    return f"请说要{verb}哪一项，比如“{verb} {names[0]}”。可选：{'、'.join(names)}。"


def subscribed(name: str) -> str:
    return f"已为您订阅「{name}」提醒，有新消息会第一时间告诉您。"


def unsubscribed(name: str) -> str:
    return f"已为您退订「{name}」提醒。想再收到时发“订阅 {name}”。"


# --- what residents do besides ordering ---------------------------------------------------


def greeting(community: str) -> str:
    return f"您好！我是{community}的服务小助手，有事直接跟我说就行，打字、语音都可以。"


ACK = "好的。还有需要随时找我。"
ABOUT_ME = (
    "我是社区的服务小助手，是自动回复的机器人。有事直接跟我说就行；想找工作人员，回复“转人工”。"
)
THANKS = "不客气，这是我们应该做的！还有需要随时找我。"
CHAT = "谢谢您跟我说这些！有需要社区帮忙办的事，随时告诉我。"
UNCLEAR = (
    "不好意思，我没太明白您的意思。需要办什么事，直接说就行，比如“家里水管漏水了”；"
    "发“菜单”可以看社区的全部服务。"
)


def chat(*, off_scope: bool, unclear: bool, about_bot: bool = False) -> str:
    """The answer to small talk, to a wish no community serves, to a question about the
    bot itself, or to a message the bot could not place (none is kept as a need)."""
    if about_bot:
        return ABOUT_ME
    if off_scope:
        return OFF_SCOPE
    return UNCLEAR if unclear else CHAT


OFF_SCOPE = "不好意思，这件事社区这边帮不上忙。社区能提供的服务，发“菜单”就能看到。"
COMPLAINT = "给您添麻烦了，真对不起！您的意见已经转给社区工作人员，他们会尽快联系您、把事情办好。"
QUESTION_HANDED_OFF = "您问的这个我还答不上来，已经转给社区工作人员，他们会尽快在这里回复您。"
NOTHING_TO_CANCEL = "您现在没有可以取消的预约。需要办什么事，直接告诉我就行。"
NOTHING_TO_RATE = "您现在没有要评价的订单。需要办什么事，直接告诉我就行。"
KEEP_ORDER = "好的，订单给您保留着。"
ASK_STARS = "愿意的话，给这次服务打几分？回复1到5分就行，不打也没关系。"


def praised(unit: str | None) -> str:
    if unit:
        return f"谢谢您的肯定！我会把您的话转达给{unit}，他们一定很高兴。"
    return THANKS


def confirm_cancel(code: str, title: str, when: str) -> str:
    return f"要取消订单 {code}（{title}{when}）吗？回复“是”取消，回复“不是”就保留。"


def which_to_cancel(lines: list[str]) -> str:
    listing = "\n".join(f"{n}. {line}" for n, line in enumerate(lines, start=1))
    return f"您要取消哪一个？请回复序号：\n{listing}\n不取消了请回复“不是”。"


def rated_in_words(stars: int, title: str) -> str:
    return f"谢谢您的评价！「{title}」记为{stars}分，您的意见会帮助单位把服务做得更好。"


def outcome_passed_on(unit: str, title: str) -> str:
    return f"收到，已经把您说的情况转告{unit}（{title}），请他们尽快处理。社区也会跟进。"


def reopened(unit: str, title: str, code: str) -> str:
    return (
        f"抱歉还没解决好。订单 {code}（{title}）已经重新交给{unit}，"
        "您说的情况也转告了他们，会尽快再来处理。社区也会跟进。"
    )


def solved_thanks(title: str) -> str:
    return f"太好了，「{title}」办好了就好！" + ASK_STARS


# --- emergencies ----------------------------------------------------------------------------

_EMERGENCY_FIRST = {
    "fire": "请马上拨打119！先带家人离开，用湿毛巾捂住口鼻，弯腰走楼梯，"
    "不要坐电梯，不要回去拿东西。",
    "gas": "请马上关掉燃气总阀，打开门窗通风，不要开关电灯电器、不要打电话或点火，人先到室外，"
    "再拨打燃气公司抢修电话或119。",
    "medical": "请马上拨打120叫救护车！说清楚地址和病人情况，不要随便挪动病人，"
    "有人在身边就请他帮忙下楼接救护车。",
    "crime": "请马上拨打110报警！先保护好自己，躲到安全的地方，不要和坏人硬拼。",
    "fraud": "请马上拨打110报警，或拨打96110反诈专线；立刻打银行客服电话冻结账户、止付，"
    "不要再转任何钱，保留好聊天记录和转账凭证。",
    "missing": "请马上拨打110报警，说清楚走失的人长什么样、穿什么衣服、最后在哪里出现；"
    "不用等24小时，越早报警越好。",
    "water": "请马上拨打110和120！大声呼救，找长竿、绳子、救生圈递过去，不会游泳千万不要下水。",
    "disaster": "请马上离开危险的地方，到高处或结实的房间里，不要靠近墙、树和电线；"
    "有人被困或受伤，请立即拨打119或120。",
    "danger": "请马上拨打110（需要救护车打120）！先保证自己的安全。",
}


def emergency(kind: str, duty_phone: str | None) -> str:
    lines = ["⚠️ " + _EMERGENCY_FIRST.get(kind, _EMERGENCY_FIRST["danger"])]
    if duty_phone:
        lines.append(f"社区值班电话：{duty_phone}")
    lines.append("我已经通知社区工作人员。")
    return "\n".join(lines)


# --- units' members -------------------------------------------------------------------------


def unit_help(units: list[str]) -> str:
    return (
        f"您是{'、'.join(units)}的成员，可以发：\n"
        "1. 待办：查看贵单位的订单；\n"
        "2. 接单 订单号：接下订单；\n"
        "3. 开始 订单号：开始上门或服务；\n"
        "4. 完成 订单号 办理情况：办结，比如“完成 AB23CD 已换好水管”；\n"
        "5. 退回 订单号 原因：不属于贵单位的请退回社区重新派单。\n"
        "居民收到进度通知，社区工作人员在后台也能看到。"
    )


# --- answering the bot's questions ------------------------------------------------------------

WAY_OUT_OPTIONAL = (
    "如果不方便回答，回复“跳过”就行；也可以回复“转人工”找工作人员，或回复“取消”不办了。"
)
WAY_OUT_CONFIRM = "不方便的话，回复“转人工”让工作人员帮您办。"
WAY_OUT_LIST = "都不需要的话回复“取消”；也可以直接说您要办的事，或回复“转人工”找工作人员。"
WAY_OUT_REQUIRED = "这一项需要填。不方便的话，回复“转人工”让工作人员帮您，或回复“取消”不办了。"
STAY = {
    "greeting": "您好！",
    "ack": "好的。",
    "thanks": "不客气！",
}
"""A short word for a greeting or thanks typed at a question, before it is asked again."""
WITHDRAWN = "（不好意思，您刚才办的这项服务社区刚刚调整了，暂时不能预约。我们重新来。）"
NEW_REQUEST_NOTE = "（刚才的预约先不办了，我们先说这件事。）"
DROPPED_NOTE = "（刚才的预约先放下了。）"


CAMPAIGN_REPLY_TEXT = 300
"""Characters of a campaign's text in the answer to a scan of its poster."""


def poster_scanned(topic: str, title: str, text: str) -> str:
    """The answer to a scan of a campaign poster: the campaign, and its subscription."""
    if len(text) > CAMPAIGN_REPLY_TEXT:
        text = text[: CAMPAIGN_REPLY_TEXT - 1] + "…"
    return (
        f"【{title}】\n{text}\n\n"
        f"已为您订阅「{topic}」提醒，有新的提醒会发给您；不想收可以发“退订 {topic}”。"
    )
