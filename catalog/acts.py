"""What a resident is doing with a message, read before any catalog item is matched.

A service bot that only matches items hears every message as a request: 你好 becomes
an unmet need, 谢谢 a menu, 修好了很满意 a second repair order. People first greet,
thank, report how it went, change their minds, ask about the office, complain, chat,
or call for help; a request for a service is one act among these. This module reads
the act from the wording alone (no catalog, no I/O), with patterns of general spoken
Mandarin, so it works the same for any community; ``catalog.understanding`` combines
it with the catalog matcher and the FAQ.

The patterns are precise rather than broad: a message that reads as nothing in
particular is a ``request`` and goes to the matcher, as before. Emergencies are
checked first and on the raw text (see :func:`emergency_in`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from catalog.answers import parse_rating
from catalog.normalize import plain as plain_text
from catalog.normalize import simplified, words_only


class Act(StrEnum):
    REQUEST = "request"
    """Asks for a service, or reports a problem someone should fix."""
    GREETING = "greeting"
    ACK = "ack"
    """好的、收到、知道了: acknowledges, asks nothing."""
    THANKS = "thanks"
    """Thanks or praise (of a unit, a worker, an order)."""
    OUTCOME = "outcome"
    """How an order turned out: 修好了, 很满意, 没修好, 还在漏."""
    RATING = "rating"
    """A bare rating: 5分, 五星好评."""
    CANCEL = "cancel"
    """Calling off an order in one's own words: 我妈去不了了，不去义诊了."""
    QUESTION = "question"
    """A question about the community (office hours, where, how to): set by
    ``catalog.understanding`` when the message is phrased as a question and either the
    FAQ answers it or no service fits; the wording alone never decides it."""
    COMPLAINT = "complaint"
    """About the service itself (waiting, attitude), not a nuisance to be fixed."""
    EMERGENCY = "emergency"
    CHAT = "chat"
    """News, small talk, or a request no community serves (train tickets, shopping)."""


class Emergency(StrEnum):
    FIRE = "fire"
    GAS = "gas"
    MEDICAL = "medical"
    CRIME = "crime"
    FRAUD = "fraud"
    MISSING = "missing"
    WATER = "water"
    DISASTER = "disaster"
    """A building or the weather endangering people now: flooding, a collapse, a typhoon."""
    DANGER = "danger"
    """Someone in danger with no more specific cue (救命, 想不开)."""


@dataclass(frozen=True)
class ActReading:
    act: Act
    emergency: Emergency | None = None
    outcome: Literal["solved", "unsolved"] | None = None
    satisfied: bool | None = None
    """满意 (True) or 不满意 (False) when said."""
    stars: int | None = None
    asks_new: bool = False
    """Asks for something in so many words (我想/能不能/帮我/怎么办): even phrased as a
    question, a request for help rather than a question about the community."""
    wants_done: bool = False
    """Asks for something to be done for them (帮我/能派人/上门/来修), not to be told
    something: an FAQ answer is then given only when it is sure."""
    question: bool = False
    """Phrased as a question (吗/呢/？/几点/在哪 …)."""
    asks: bool = False
    """Has words of asking or of a problem (想/要/帮/能不能/坏了/漏 …): a message the
    catalog cannot serve is an unmet need only when it asks for something."""
    about_bot: bool = False
    """Asks who or what the bot is (你是机器人吗)."""
    refers_back: bool = False
    """Speaks of a service already promised or given (说好的, 师傅, 上次, 修过): with no
    order in the system, a person should look into it, not a new order."""
    off_scope: bool = False
    """Shopping, travel, tickets, prices, recommendations of businesses: asks for
    something no community service offers."""


# --- emergencies ----------------------------------------------------------------------

# Words that turn an emergency word into talk about one: prevention, training,
# the past, hypotheticals, fear. 消防演练 is not a fire; 怕被骗 is not a fraud.
_NOT_NOW = re.compile(
    "防|预防|演练|演习|讲座|知识|培训|宣传|隐患|检查|排查|安全教育|课|怎么办才|"
    "如果|万一|要是|假如|以防|会不会|怎么预防|怕|担心|差点|险些|练习|怎么用|怎么喷|灭火器|教一下|学一下|"
    "报警器|想装|装个|安装|病史|住院了|之前|经常|有时候|偶尔|前阵子|没被|别被|容易被|"
    "以前|去年|前年|上次|上回|上个月|上周|上礼拜|那年|小时候|听说|新闻|电视上|看到报道"
)
_URGENT = re.compile(
    r"救命|救救|快来人|快来|快点来|赶紧来|来人啊|急死|紧急|报警(?!器|的|装置)|"
    r"(?:打|拨|叫|喊|报)\s*(?:110|119|120)(?!\d)"
)

_EMERGENCIES: list[tuple[Emergency, re.Pattern[str]]] = [
    (
        Emergency.FIRE,
        re.compile(
            "着火|著火|起火|失火|火灾了|烧起来|(?<!不)冒烟了|冒浓烟|浓烟|火很大|火烧|电线冒火|冒火花|"
            "火着了|燃起来|烧着了|(?:打|拨|叫)\\s*119(?!\\d)|^\\s*119\\W*$"
        ),
    ),
    (
        Emergency.GAS,
        re.compile(
            "煤气泄漏|燃气泄漏|天然气泄漏|(?:煤气|燃气|天然气|气罐|灶).{0,4}漏气|(?<!闻不着)(?<!闻不到)(?:煤气|燃气|天然气)味|"
            "闻到煤气"
        ),
    ),
    (
        Emergency.WATER,
        re.compile("落水|溺水|掉河里|掉进河|掉水里|掉进水|掉湖里|掉进湖|掉塘里|被水冲走"),
    ),
    (
        Emergency.MISSING,
        re.compile(
            "(?:孩子|小孩|娃|崽|儿子|女儿|孙子|孙女|老人|老爷子|老太太|我妈|我爸|老伴|"
            "奶奶|爷爷|外婆|外公|姥姥|姥爷)[^，。,.!！?？的证卡本包机匙钱]{0,14}"
            "(?:走丢|走失|不见了|找不到了|找不着了|丢了|没回来|没回家|还没回|联系不上|失联)"
        ),
    ),
    (
        Emergency.MEDICAL,
        re.compile(
            "晕倒|昏倒|昏过去|昏迷|不省人事|没有呼吸|没呼吸|喘不上气|喘不过气|"
            "心脏病发|心梗|突然中风|好像中风|抽搐|抽筋倒地|口吐白沫|大出血|流了好多血|血止不住|"
            "摔倒了起不来|摔了起不来|倒在地上|倒地不起|叫救护车|喊救护车|触电|被电到|"
            "(?:头上|头|脸上|一直)流血|躺着起不来|摔.{0,6}起不来|倒在地上|"
            "(?:打|拨|叫|喊)\\s*120(?!\\d)|^\\s*120\\W*$|吃错药了|误吞|吞了(?:硬币|纽扣|电池|药)|"
            "嘴歪|说不出话|心脏不舒服|心口疼得|胸口疼得|喘不过来|喘不上来|喝了农药|中毒了|煤气中毒"
        ),
    ),
    (
        Emergency.FRAUD,
        re.compile(
            "冒充.{0,8}(?:公安|警察|客服|领导|法院|检察).{0,12}转|刚被骗|被骗了\\d|被骗了[一二两三四五六七八九十几百千万]|被骗了钱|被骗走|骗了我|"
            "骗走了|给骗子转|转给骗子|转了钱.{0,8}骗|骗子.{0,8}转了|上当受骗了|上当了|"
            "被人骗了|被诈骗了|钱被骗|刚转了.{0,10}(?:万|千|块|元)|被骗"
        ),
    ),
    (
        Emergency.CRIME,
        re.compile(
            "报警(?!器|的|装置|按钮|铃)|(?:打|拨|叫)\\s*110(?!\\d)|^\\s*110\\W*$|有人.{0,3}打架|"
            "(?:有人|大人|男的|女的|两个人|几个人|一群人).{0,4}打起来了|打人了|有人在撬|进了?小偷|"
            "持刀|拿刀|拿着刀|砍人|捅人|抢劫|抢东西|"
            "被抢|小偷在|正在偷|在偷东西|有人撬|正在撬|入室|闯进|家暴|他打我|"
            "老公打我|要打我|被打了|耍流氓|跟踪我|绑架|有人持械"
        ),
    ),
    (
        Emergency.DISASTER,
        re.compile(
            "水淹到|淹到(?:腰|胸|膝盖|二楼|一楼)|被水淹|家里被淹|水漫进|洪水|山洪|泥石流|山体滑坡|"
            "(?:墙|楼|房子|屋顶|天花板|阳台|围墙|棚子|树)(?:要)?(?:塌了|倒了|倒塌|垮了|砸下来)|"
            "(?:吹倒|吹塌|刮倒|刮塌|砸倒)了|砸到人|砸伤了|被砸|台风.{0,8}(?:塌|倒|吹走|进水|危险|困)"
        ),
    ),
    (
        Emergency.DANGER,
        re.compile(
            "救命|救救|快来人|来人啊|想不开|要跳楼|跳楼|轻生|不想活了|自杀|被困|困在电梯|电梯困人|"
            "关在电梯|电梯.{0,6}里面有人"
        ),
    ),
]


def emergency_in(text: str) -> Emergency | None:
    """The emergency the message reports, or None.

    Cheap enough for the event loop (a few regular expressions over at most the first
    1,000 characters), so that it runs before anything else, in any state. A word
    of danger in talk about prevention, the past or a fear (消防演练, 去年被骗过, 怕被骗)
    is not an emergency, unless the message also cries for help (救命, 快来人).
    """
    window = simplified(text[:1000])
    if not window.strip():
        return None
    not_now = _NOT_NOW.search(window) is not None
    urgent = _URGENT.search(window) is not None
    for kind, pattern in _EMERGENCIES:
        if pattern.search(window) is None:
            continue
        if not_now and not urgent:
            continue
        if kind is Emergency.FRAUD and _FRAUD_HEARSAY.search(window):
            continue
        return kind
    return None


_FRAUD_HEARSAY = re.compile("别人|邻居|朋友|同事|听说|有人说|会不会|怎么防|防止|差点")


# --- the other acts --------------------------------------------------------------------

_EDGE = re.compile(r"^[\s\W_]+|[\s\W_]+$")
_PARTICLES = "啊呀吧哈哦噢嘞呢啦嘛哇么"


def _core(text: str) -> str:
    """The words alone: punctuation, emoji and spaces removed, particles at the end dropped."""
    words = words_only(text)
    return words.rstrip(_PARTICLES) or words


_GREETING_WORDS = (
    "你好|您好|你们好|大家好|在吗|在不在|在么|有人吗|有人在吗|有没有人|有人没|"
    "早|早啊|早上好|早安|上午好|中午好|下午好|晚上好|晚安|嗨|哈喽|哈罗|hello|hi|喂|"
    "小助手|助手|社区|工作人员|老师|同志|书记|主任|主任好|老师好|师傅好|打扰了|打扰一下|"
    "新年好|过年好|节日快乐|中秋快乐|春节快乐|新年快乐|吃了吗|吃了没|吃饭了吗|吃了吗您|"
    "听得见吗|听得到吗|听到吗|能听到吗|喂喂"
)
_GREETING = re.compile(f"(?:(?:{_GREETING_WORDS})[{_PARTICLES}]?)+")

_ACK = re.compile(
    "(?:好的?|好滴|好嘞|好吧|嗯+|哦+|噢+|收到|收到了|知道了|知道|晓得了|明白了?|了解了?|行|"
    "不用了|不需要了|没事了|没事|"
    "可以|ok|okay|没问题|好的收到|谢谢收到|收到谢谢|👌|ok的)+"
)
_EMOJI_ONLY = re.compile(r"^[\W_]*$")

_THANKS = re.compile(
    "谢谢|谢了|感谢|多谢|多亏|辛苦了|辛苦你们|辛苦大家|麻烦你们了|太感谢|感激|"
    "点赞|点个赞|👍|好评|给力|真棒|真好|太好了|很好|挺好|不错|搞得好|做得好|办得好|"
    "表扬|锦旗|热心|耐心|周到|负责任|靠谱|暖心|贴心|及时|帮了大忙|帮大忙|能干|人真好|"
    "费心了|操心了"
)
_EXPLICIT_THANKS = re.compile("谢谢|谢了|感谢|多谢|辛苦了|辛苦你们|帮了大忙|帮大忙|费心了")
_DONE = re.compile("了(?!吗|没|不)|过了|来.{1,3}的")
"""A finished action (帮我把车找回来了): what thanks follow, not what a request asks."""
_PRAISE_ONLY = re.compile(r"^(?:[👍🙏❤️💐👏]|\s)+$")
_WAVE_ONLY = re.compile(r"^(?:[👋🌹🌞☀️🌸🌺😊😀😄🤝]|\ufe0f|\s)+$")
_GREETING_FIRST = re.compile(
    f"^(?:你好|您好|你们好|大家好|早上好|上午好|中午好|下午好|晚上好|早安|哈喽|嗨)[{_PARTICLES}]?"
)
"""A message that opens with a greeting (大家好 我是刚搬来的): a greeting, when the rest
asks nothing."""
_RATING_FIRST = re.compile(
    r"^(?:评价|评分|打分)?[:：]?\s*(?:给|打|评)?(?:个)?(?P<n>[1-5一二两三四五])\s*(?:分|星|颗星)"
)
"""A rating that opens the message, with a comment after it (4分吧 来得有点晚)."""
_DIGIT_WORDS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}

_SOLVED = re.compile(
    "修好了|弄好了|搞好了|整好了|修完了|解决了|处理好了|办好了|办完了|办妥了|"
    "已经好了|现在好了|好了好了|不漏了|灯亮了|能用了|来过了|来修过了|上门了.{0,6}好|"
    "已经来了|帮我弄好|帮我修好|帮我办好|没动静了|"
    "(?:修剪|调解|处理|清理|打扫|安装|疏通|维修|检修|搬|修|弄|装|换|剪|清)(?:完|好)了|"
    "搬上去了|送上去了|送到了"
)
_UNSOLVED = re.compile(
    "没修好|没弄好|没搞好|没整好|没解决|没处理好|没办好|还没好|"
    "还在漏|还是漏|又漏了|又坏了|还是坏|还是不行|还是不亮|还是堵|又堵了|"
    "修了又坏|越修越|一直没人来|还没人来|师傅还没来|师傅没来|没人联系我|不理人|"
    "还是(?:不|没)|白修了|没见人|没见着人|人没来|等到.{0,6}也没"
    "等了.{0,6}(?:天|周|星期|礼拜|小时).{0,8}(?:没|还)"
)
_SATISFIED = re.compile("非常满意|很满意|挺满意|特别满意|满意|满分")
_UNSATISFIED = re.compile("不满意|不太满意|很不满意|差评|太差劲|很差劲")

_CANCEL = re.compile(
    "去不了了|去不成了|来不了了|参加不了了|不去了|不去[^，。,.!！?？]{1,8}了|不参加了|"
    "不参加[^，。,.!！?？]{1,8}了|不用来了|不用上门了|不用过来了|别来了|不要来了|"
    "不来了|取消(?:了|掉|一下)?(?:预约|报名|订单|那个|这个|吧)|取消掉|退掉|不约了|"
    "不报了|不预约了|那天有事|改天再|改天吧|回头再说|先别.{0,4}约了|先不约了|"
    "这(?:周|次|回)去不了|(?:去|来|参加)不了(?!医院|银行|菜市场|超市|楼下|门)|"
    "\\S{2,}?(?:就)?(?:不用了|不需要了)"
)

_COMPLAINT = re.compile(
    "投诉(?:你们|社区|工作人员|师傅|单位|物业的人|那个师傅)|态度(?:很|太|特别|非常)?(?:差|不好|恶劣)|"
    "不作为|踢皮球|推来推去|推三阻四|敷衍了事|不理人|爱理不理|"
    "一直没人(?:来|联系|回|管)|等了.{0,6}(?:天|周|星期|礼拜).{0,8}(?:没|还)|太慢了|效率太低|"
    "乱收费|收了钱|要钱才|服务太差|服务很差|跟没报一样|跟没修一样|走个过场|走过场|"
    "反映了(?:多少|好几|好多|几)(?:回|次|遍)|这就是你们|这叫.{0,8}[?？]|就这服务|"
    "服务一点没|一点没见好|太难用|不好用|点半天|等到啥时候|等到什么时候|"
    "打了.{0,4}(?:遍|次|回).{0,4}没人接|电话.{0,6}没人接|"
    "不满意你们|太不负责|推诿|"
    "(?:你们|社区|物业|师傅|工作人员|单位|居委会).{0,10}(?:一拖再拖|拖了.{0,6}(?:天|周|月)|不负责|"
    "不处理|没下文|不回复|不理|甩脸色|摆架子|态度(?:凶|横))|"
    "(?:报修|反映|报上去|打电话|留言).{0,12}(?:还没(?:人)?处理|没人处理|没下文|石沉大海|没人理|没人回)"
)
_ABOUT_BOT = re.compile("你是(?:不是)?(?:机器人|真人|谁|人工|电脑)|你叫什么|你是人吗|是机器人吗")
_PRAISED = re.compile(
    "你们|师傅|社区|工作人员|服务|医生|大夫|民警|警官|律师|老师|志愿者|小伙子|姑娘|书记|主任|"
    "主席|阿姨|大姐|大哥|同志|干部|领导|网格员|"
    "物业|队|站|所|中心|单位|大家|各位"
)
"""Whom praise is for: an adjective alone (天气真好) is not praise of anyone."""
_THEY = re.compile("你们|师傅|他们|工作人员|的人|医生|大夫|民警|律师")
"""Someone else as the subject: their 不来了 is a no-show, not the resident's change."""
_REFERS_BACK = re.compile(
    "说好的|说好了|说好|师傅|上次|上回|之前|前几天|修过|修完|刚修|修了|来过|来看过|处理过|"
    "报过|报修了|报修过|约好|维修过"
)
_CANCEL_EXPLICIT = re.compile("取消(?!订单[A-Za-z0-9 ])|不用(?:修|来|上门|过来)了")

_QUESTION = re.compile(
    r"[?？]|吗$|吗[\s,，。!！]|么$|不$|没$|(?:能|可以|行|有|是|要)\S{0,6}不(?:\s|$|[,，])|"
    "几点|几号|什么时候|啥时候|哪天|在哪|哪里|哪儿|去哪|"
    "怎么|咋|如何|多少钱|多少|要不要|是不是|有没有|能不能|可不可以|可以吗|行不行|需不需要|"
    "需要带|带什么|收费吗|要钱吗|免费吗|谁管|找谁|问一下|请问|想问|打听"
)

_ASKS = re.compile(
    "想|要|需要|希望|能不能|能否|能不|可不可以|可以帮|可以来|有没有|帮我|帮忙|帮帮|帮一下|"
    "请|麻烦|求|找人|找个|怎么办|咋办|怎么弄|怎么处理|如何|怎么|咋|哪里|去哪|预约|报名|申请|"
    "办理|咨询|上门|来修|来看|过来|管一管|管管|处理|反映|投诉|举报|得不得|能帮|给我|"
    "坏了|坏掉|漏|渗|堵|不亮|不通|没电|没水|停电|停水|跳闸|裂|塌|脱落|掉下来|吵|噪音|扰民|"
    "臭|乱堆|乱放|占用|占道|违建|被偷|不见了|危险|隐患|生病|不舒服|疼|痛|困难|交不起|欠|"
    "拖欠|纠纷|吵架|没钱|没人管|受不了|影响"
)

_OFF_SCOPE = re.compile(
    "哪家.{0,12}(?:好|便宜|好吃|好看|靠谱|正宗|划算|实惠)|哪款|什么牌子|哪个牌子|"
    "哪个.{1,4}好(?:$|[，,。?？ ])|收费的(?:那种|也行|也可以|都行)?(?:$|[，,。 ])|"
    "二手|转让|出售|求购|收一个|代购|团购|优惠券|打折|促销|外卖|网购|淘宝|拼多多|美团|"
    "火车票|动车票|高铁票|机票|车票|门票|景点|攻略|旅游|旅行|拼车|打车|滴滴|"
    "租个.{0,6}(?:房|室)|找.{0,4}中介|挂出去卖|卖房子|房价|股票|基金|抄底|彩票|炒股|"
    "外地来玩|来玩的|付钱的|花钱请|收费的也行|宠物医院|宠物店|兽医|猫跑丢|狗跑丢|"
    "天气(?:怎么样|预报|好热|好冷|热|冷)|(?:会不会|要不要|什么时候)(?:下雨|落雨|降温)|"
    "热得要死|冷得要死|堵不堵车|堵车|公交改线|坐几路|寄.{0,6}快递|快递.{0,6}多少钱|"
    "换.{0,4}宽带|交话费|充话费|驿站在哪|哪里能买|哪里买|哪儿买|在哪买|哪里有卖|有没有.{0,12}推荐|推荐.{0,6}(?:公司|店|工作室|中介|驾校)|"
    "搬家公司|装修公司|婚庆|婚纱|健身房|驾校|一日游|旅行团|出租车|叫个车|叫辆车|"
    "打麻将|三缺一|斗地主|打扑克|天气咋样|天气如何|天气好不好"
)

_CHAT = re.compile(
    "哈哈|呵呵|嘿嘿|分享|跟你们讲|跟你们说|跟大家说|告诉你们|好热闹|热闹|真开心|好开心|"
    "高兴|开心|幸福|喜事|好看|好美|真美|漂亮|无聊|随便聊|聊聊天|"
    "可多了|人好多|好多人|人真多|"
    "是我(?:的)?(?:老)?(?:同学|亲戚|朋友|邻居|老乡)|新开了|真的假的|"
    "又(?:搞|办|开|组织)了|(?:搞|办|弄)得(?:真|挺|很|太)好"
)


@lru_cache(maxsize=4096)
def read_act(text: str) -> ActReading:
    """The act of a message from its wording alone (see the module docstring)."""
    emergency = emergency_in(text)
    if emergency is not None:
        return ActReading(Act.EMERGENCY, emergency=emergency)
    plain = plain_text(text[:1000])
    core = _core(plain)
    words = words_only(plain)
    asks_new = _asks_for_new(plain)
    question = _QUESTION.search(plain) is not None or _QUESTION.search(words) is not None
    base = ActReading(
        Act.REQUEST,
        question=question,
        asks=_ASKS.search(plain) is not None,
        asks_new=asks_new,
        wants_done=_WANTS_DONE.search(plain) is not None,
        off_scope=_OFF_SCOPE.search(plain) is not None,
        refers_back=_REFERS_BACK.search(plain) is not None,
        about_bot=_ABOUT_BOT.search(plain) is not None,
    )

    stars = parse_rating(text[:200])
    if stars is not None:  # the whole message is a rating (5分, 五星好评，谢谢)
        return replace(base, act=Act.RATING, stars=stars, satisfied=stars >= 4)
    opening = _RATING_FIRST.match(plain)
    if opening is not None:
        said = opening["n"]
        stars = int(said) if said.isdigit() else _DIGIT_WORDS[said]
        return replace(base, act=Act.RATING, stars=stars, satisfied=stars >= 4)
    if not core or _EMOJI_ONLY.match(plain):
        if _WAVE_ONLY.match(plain):
            return replace(base, act=Act.GREETING)
        praise = _PRAISE_ONLY.match(plain) is not None and bool(plain.strip())
        return replace(base, act=Act.THANKS if praise else Act.ACK)
    if _GREETING.fullmatch(core):
        return replace(base, act=Act.GREETING)
    if _GREETING_FIRST.match(core) and not (base.asks or question):
        return replace(base, act=Act.GREETING)
    if _ACK.fullmatch(core):
        return replace(base, act=Act.ACK)

    satisfied: bool | None = None
    if _UNSATISFIED.search(plain):
        satisfied = False
    elif _SATISFIED.search(plain):
        satisfied = True
    if _COMPLAINT.search(plain):
        return replace(base, act=Act.COMPLAINT)
    if _CANCEL_EXPLICIT.search(plain) and not question:
        return replace(base, act=Act.CANCEL)
    if _UNSOLVED.search(plain) and not asks_new:
        return replace(base, act=Act.OUTCOME, outcome="unsolved", satisfied=satisfied)
    short_verdict = satisfied is not None and len(core) <= 12 and not asks_new
    if (_SOLVED.search(plain) or short_verdict) and not question:
        outcome: Literal["solved", "unsolved"] | None = (
            "solved" if _SOLVED.search(plain) or satisfied else None
        )
        return replace(base, act=Act.OUTCOME, outcome=outcome, satisfied=satisfied)
    if _CANCEL.search(plain) and not question:
        if _THEY.search(plain):  # 师傅说好今天来，又不来了: their no-show, not a cancellation
            return replace(base, act=Act.OUTCOME, outcome="unsolved", satisfied=satisfied)
        return replace(base, act=Act.CANCEL)
    if base.about_bot:
        return replace(base, act=Act.CHAT)
    praise = _EXPLICIT_THANKS.search(plain) is not None or (
        _THANKS.search(plain) is not None and _PRAISED.search(plain) is not None
    )
    if praise and not question and _only_thanks(plain, asks_new):
        return replace(base, act=Act.THANKS, satisfied=satisfied)
    if _THANKS.search(plain) and not (base.asks or asks_new or question):
        return replace(base, act=Act.CHAT)  # 今天天气真好: pleased, asking nothing
    if base.off_scope or (_CHAT.search(plain) and not asks_new):
        return replace(base, act=Act.CHAT)
    return base


_NEW_REQUEST = re.compile(
    "我想|想要|想请|想找|想办|想问|想预约|想报名|想咨询|想学|想参加|想让|想给|我要|"
    "想加入|想申请|想了解|能(?:有个?人|给|帮|派|来|上门)|你们给|给(?:修|弄|看|换|装|收|拉|清)|修修|来修|派人|派个人|管管|管一管|处理一下|"
    "再(?:搞|办|来|开|组织|讲)一次|还有没有|还办不办|还搞不搞|什么时候再|下次什么时候|需要|能不能|能否|可不可以|有没有|"
    "帮我|帮忙|帮帮|麻烦|请问|请帮|预约|报名|申请|怎么办|咋办|怎么弄|得不得"
)
_WANTS_DONE = re.compile(
    "帮我|帮忙|帮帮|给我(?:们)?(?:修|弄|看|办|换|装|开|送)|派人|派个人|来修|上门|来家|"
    "能(?:有个?人|给|帮|派|来)"
)
_HELPED = re.compile("帮我|帮忙|帮帮|帮我们|麻烦")
_STRONG_REQUEST = re.compile(
    "我想|想要|想请|想找|想办|想问|想预约|想报名|想咨询|想学|想参加|想让|想给|我要|"
    "能不能|能否|可不可以|有没有|请问|请帮|预约|报名|申请|怎么办|咋办|怎么弄|得不得|"
    "还有没有|再(?:搞|办|来|开|组织|讲)一次|下次什么时候|什么时候再|一下(?!子)|"
    "帮我.{0,8}吧"
)
"""Asking for something in so many words: never mere thanks."""
"""Words of asking that also tell of help received (帮我把车找回来了)."""


def _only_thanks(plain: str, asks_new: bool) -> bool:
    """Thanks or praise and nothing asked: no word of asking, or only words that also
    tell of help already given (帮我把车找回来了，太感谢了; 师傅大半夜来修的暖气，辛苦了),
    not of help wanted (帮我修一下，谢谢)."""
    if not asks_new:
        return True
    if _STRONG_REQUEST.search(plain):
        return False
    thanks = list(_EXPLICIT_THANKS.finditer(plain))
    if not thanks:
        return False
    words = words_only(plain)
    framed = words.startswith(thanks[0][0]) or words.endswith(thanks[-1][0].rstrip("了"))
    said = _EXPLICIT_THANKS.sub("", _HELPED.sub("", plain))
    return framed or _DONE.search(said) is not None


def _asks_for_new(plain: str) -> bool:
    """Asks for something in the same breath (谢谢，还想问一下…): not only thanks."""
    return _NEW_REQUEST.search(plain) is not None
