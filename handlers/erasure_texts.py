"""What residents are told about erasing their information (删除我的信息)."""

from __future__ import annotations

from bot.privacy.erasure import KeptOrder

WHAT_GOES = (
    "会删除：您的电话、地址和称呼，您发来的文字、照片和位置，还有您的订阅。"
    "已经办完的订单只留下服务项目、时间和评分，用来统计服务情况，看不出是谁。"
)
HOW_TO_CONFIRM = "确定删除请回复“确认删除”；不删了请回复“算了”。"
NOTHING_ERASED = "好的，什么都没有删除。以后有需要，随时跟我说。"
GO_ON = "好的，什么都没有删除。我们接着来，请回答上面的问题。"
ASK_FIRST = "要删除您的个人信息，请先回复“删除我的信息”，我会告诉您会删除哪些内容。"
CONFIRM_WORDS = frozenset({"确认删除", "确定删除", "确认", "确定", "删除", "删除吧", "删吧", "是"})
KEEP_WORDS = frozenset({"算了", "不删了", "不删", "不用了", "不要删", "别删", "不", "不是", "取消"})


def _orders(kept: list[KeptOrder]) -> str:
    return "、".join(f"{o.code}（{o.title}，{o.status}）" for o in kept)


def ask(kept: list[KeptOrder]) -> str:
    """The question before erasing: what goes, and what stays for now."""
    lines = ["您要删除在这里留下的个人信息吗？", WHAT_GOES]
    if kept:
        lines.append(
            f"您还有没办完的订单：{_orders(kept)}。"
            "这些订单要先留着电话和地址，方便单位联系您，办完后会自动删除。"
        )
    lines.append(HOW_TO_CONFIRM)
    return "\n".join(lines)


def erased(kept: list[KeptOrder]) -> str:
    """Done: what was erased, and plainly what is kept until when."""
    if not kept:
        return "已经删除了您的个人信息。谢谢您的信任！以后有需要，随时再跟我说。"
    return (
        "已经删除了您的个人信息。\n"
        f"没办完的订单 {_orders(kept)} 先留着电话和地址，方便单位联系您；"
        "订单办完后会自动删除。谢谢您的信任！"
    )
