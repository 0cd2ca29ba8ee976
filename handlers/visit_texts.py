"""What grid workers (网格员) are told about door-to-door visits (下户走访)."""

from __future__ import annotations

OUTCOME_ZH = {"reached": "已宣传", "nobody_home": "没人在家", "follow_up": "需跟进"}

HOW = (
    "请这样发：走访 3栋2单元501 已宣传\n"
    "结果可以写：已宣传、没人在家、需跟进（后面写上要跟进的事）。\n"
    "发“走访”可以看还没走访到的住户，回复序号来记。"
)
NOT_A_WORKER = (
    "这个命令是给网格员用的。如果您是网格员，请先发“绑定 邀请码”，邀请码由社区工作人员提供。"
)
NO_HOUSEHOLDS = "您的网格还没有住户名单，请社区工作人员先在后台导入名单。"
CANCELLED = "好的，先不记了。需要时再发“走访”。"
NO_TASKS = "现在没有要跟进的事，辛苦了！"
ASK_OUTCOME_AGAIN = "请回复 1、2 或 3：1 已宣传，2 没人在家，3 需跟进。"
LAST_PAGE = "名单已经到底了。回复序号记下走访结果，或发“走访”刷新名单。"


def bound(grid: str) -> str:
    return (
        f"绑定成功！您现在是{grid}的网格员。\n"
        "走访后发“走访 3栋2单元501 已宣传”（也可以写 没人在家、需跟进），"
        "发“走访”看还没走访到的住户，发“走访待办”看要跟进的事。"
    )


def unreadable(said: str) -> str:
    return f"没看懂“{said}”是哪一户。请写成 3栋2单元501 这样，或者发“走访”从名单里选。"


def not_listed(said: str) -> str:
    return (
        f"住户名单里没有{said}。请核对一下门牌号，或者发“走访”从名单里选；"
        "名单要补充的话，请告诉社区工作人员。"
    )


def other_grid(household: str, grid: str) -> str:
    return f"{household}属于{grid}，不在您负责的网格里。发“走访”可以看您网格的住户。"


def _campaign(topic: str | None) -> str:
    return f"（{topic}）" if topic else ""


def recorded(household: str, outcome: str, topic: str | None, note: str) -> str:
    said = f"已记下：{household} {OUTCOME_ZH[outcome]}{_campaign(topic)}"
    if outcome == "follow_up":
        detail = f"：{note}" if note else ""
        return f"{said}{detail}。已放进跟进待办，办好后发“走访待办”销号。"
    if outcome == "nobody_home":
        return f"{said}。这一户还没走访到，方便时再去一趟。"
    return f"{said}。辛苦了！"


def next_pick() -> str:
    return "接着回复下一户的序号，或者发“走访”刷新名单。"


def households_page(
    topic: str | None, total: int, start: int, labels: list[str], more: bool
) -> str:
    lines = [f"还没走访到的住户{_campaign(topic)}，共{total}户："]
    lines += [f"{start + i}. {label}" for i, label in enumerate(labels)]
    lines.append("回复序号记下走访结果" + ("，发“更多”看下一页。" if more else "。"))
    return "\n".join(lines)


def all_reached(topic: str | None) -> str:
    return f"您网格的住户都走访到了{_campaign(topic)}，辛苦了！"


def bad_pick(count: int) -> str:
    return f"请回复名单上的序号（1到{count}），或者发“更多”看下一页。"


def ask_outcome(household: str) -> str:
    return (
        f"{household} 走访结果是？\n"
        "1. 已宣传\n2. 没人在家\n3. 需跟进（可以接着写要跟进的事，如“3 楼道灯坏了”）\n"
        "回复序号即可。"
    )


def tasks(lines: list[tuple[str, str, str]], total: int) -> str:
    """``lines``: (household, note, date) of each open follow-up shown, in order;
    ``total``: how many are open."""
    shown = [
        f"{n}. {household}{'：' + note if note else ''}（{date}）"
        for n, (household, note, date) in enumerate(lines, start=1)
    ]
    head = (
        "要跟进的事："
        if total <= len(lines)
        else f"要跟进的事共{total}件，先列出最早的{len(lines)}件："
    )
    return "\n".join([head, *shown, "办好后回复“跟进完成 序号”。"])


def task_done(household: str, left: int) -> str:
    rest = f"还有{left}件要跟进。" if left else "跟进待办都办完了，辛苦了！"
    return f"好的，{household}的跟进已办完。{rest}"


def no_such_task(number: str) -> str:
    return f"没有第{number}件跟进待办。发“走访待办”看看现在要跟进的事。"


TASK_HOW = "请回复“跟进完成 序号”，序号见“走访待办”。"
TASKS_FIRST = "请先发“走访待办”看一下现在要跟进的事，再回复“跟进完成 序号”。"


def task_was_done(household: str, left: int) -> str:
    rest = f"还有{left}件要跟进。" if left else "跟进待办都办完了。"
    return f"{household}的跟进已经有人办完了，不用再办。{rest}"
