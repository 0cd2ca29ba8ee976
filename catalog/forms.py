"""The questions asked before an order is placed: the item's own form, or a default.

An item without ``form`` gets a default that fits its service mode: a slot if it
has a schedule, the number of people for 订单式 (batch) items, a name for 代办式
(paperwork done for someone), where for services delivered at a place, and a phone
number so the unit can call back. ``form: []`` asks nothing.
"""

from __future__ import annotations

from catalog.schema import SLOT_QUESTION, Item, Mode, Question

DEFAULT_ASK = {
    SLOT_QUESTION: "您想约哪一场？请回复序号，或者说“周六上午”这样的时间。",
    "people": "一共几位参加？（比如：两个人）",
    "phone": "请留一个手机号码，方便工作人员联系您。",
    "building": "请问是哪栋楼、哪个单元（或者在哪个位置）？",
    "name": "请问怎么称呼您（或者需要帮助的人）？",
    "notes": "还有什么要补充的吗？没有的话回复“没有”。",
}

EXAMPLES = {
    SLOT_QUESTION: "比如回复“1”，或者“周六上午”",
    "people": "比如“两个人”或“3”",
    "phone": "比如 13812345678",
    "building": "比如“3栋2单元”或“东西巷口”",
    "name": "比如“王阿姨”",
    "notes": "有什么情况直接说就行",
    "text": "直接打字回复就行",
}


def questions_for(item: Item) -> list[Question]:
    if item.form is not None:
        return list(item.form)
    questions: list[Question] = []
    if item.slots or item.weekly:
        questions.append(Question(id=SLOT_QUESTION, kind=SLOT_QUESTION))
    if item.mode is Mode.ORDER:
        questions.append(Question(id="people", kind="people"))
    if item.mode is Mode.PROXY:
        questions.append(Question(id="name", kind="name"))
    if not (item.slots or item.weekly) or item.grid_level:
        questions.append(Question(id="building", kind="building"))
    questions.append(Question(id="phone", kind="phone"))
    return questions


def ask(question: Question) -> str:
    return question.ask or DEFAULT_ASK.get(question.kind, "请回复：")
