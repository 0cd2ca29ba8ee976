"""Emergencies first: danger to life, fire, crime, fraud just happened, someone missing.

This router comes before every other, and answers in any state of any conversation
(the conversation stays where it was: the resident may come back to it). The reply
says what to do now (110, 119, 120, the 96110 anti-fraud line, the community's duty
phone) before anything else; the message is recorded for staff and staff are alerted
at once through their channel. An emergency never goes to the 需求清单 or behind a
menu.

Detection (``catalog.acts.emergency_in``) is a few regular expressions over the
message's beginning, cheap enough for the event loop, so that no emergency waits for
the matcher's thread.
"""

from __future__ import annotations

from bot.dispatch import Context, Predicate, Router
from bot.orders import effects
from bot.privacy.erasure import quoting_prefix
from bot.wechat.inbound import Incoming
from catalog.acts import Emergency, emergency_in
from handlers import staff, texts
from handlers.units import ACTION

router = Router("emergency")

LABELS = {
    Emergency.FIRE: "火情",
    Emergency.GAS: "燃气泄漏",
    Emergency.MEDICAL: "急病或受伤",
    Emergency.CRIME: "治安警情",
    Emergency.FRAUD: "刚被诈骗",
    Emergency.MISSING: "有人走失",
    Emergency.WATER: "有人落水",
    Emergency.DISASTER: "房屋或灾害险情",
    Emergency.DANGER: "有人遇险",
}


def _emergency(msg: Incoming, ctx: Context) -> dict[str, Emergency] | bool:
    if not msg.text or ACTION.match(msg.text):
        return False  # a unit's 完成 CODE 已关燃气阀 reports work done, not danger
    kind = emergency_in(msg.text)
    return {"kind": kind} if kind is not None else False


@router.on(Predicate(_emergency))
async def emergency(msg: Incoming, ctx: Context, kind: Emergency) -> str:
    async with ctx.sessionmaker.begin() as session:
        first = await staff.remark(session, ctx, "emergency", detail=kind.value)
        if first:
            await staff.hand_to_staff(session, ctx, f"【紧急·{LABELS[kind]}】{msg.text}")
            lines = [
                f"【紧急】居民报告{LABELS[kind]}，请立即联系处置！",
                f"居民原话：{msg.text[:200]}",
                "已提示居民拨打报警或急救电话。请在管理后台“转人工”中查看并回复居民。",
            ]
            # Keyed by the resident: an erasure blanks their words once it is sent.
            key = f"{quoting_prefix(ctx.openid)}emergency:{ctx.message_key}"
            await effects.notify_staff(session, ctx.catalog, key, lines)
    return texts.emergency(kind.value, ctx.catalog.document.community.duty_phone)
