"""What residents are told about their personal information: the notice, and the
answers to 同意 / 不同意 / 我的信息 / 撤回同意. Short and plain, for elderly residents."""

from __future__ import annotations

import datetime as dt

from bot.privacy.kept import Kept
from catalog.answers import mask_phone

HOW_TO_ANSWER = (
    "同意请回复“同意”（直接回答问题也算同意）；不同意请回复“不同意”，也可以办不用留这些的服务。"
)


def kept_for(days: int) -> str:
    """A retention period as people say it: 6个月, 3个月, 45天."""
    return f"{days // 30}个月" if days % 30 == 0 else f"{days}天"


def notice(unit: str, contact_days: int, photo_days: int) -> str:
    """The one notice, for phone, address and photos alike (whichever is asked first
    shows it, so an answer to it covers all three); the days are how long each is kept
    after the matter is done (RETAIN_CONTACT_DAYS, RETAIN_PHOTO_DAYS)."""
    return (
        f"【温馨提示】您留的电话、地址和发的照片，只给办这件事的{unit}和社区工作人员看，"
        f"用来联系您、上门服务；事情办完后，电话和地址保留{kept_for(contact_days)}，"
        f"照片保留{kept_for(photo_days)}，之后就不再保留。\n"
        f"{HOW_TO_ANSWER}"
    )


def photo_notice(unit: str, contact_days: int, photo_days: int) -> str:
    """With the first photo or place sent while booking, before any question for a
    phone or an address: the whole notice, so it is not shown twice."""
    return f"收到，会一起交给办这件事的{unit}。\n{notice(unit, contact_days, photo_days)}"


PHOTO_WHILE_CHOOSING = "收到照片。选好服务后，会先问您同不同意保存，再交给办理的单位。"
PHOTOS_WAIT = "您发的照片要您同意才能保存：同意请回复“同意”，不同意回复“不同意”。"
PHOTOS_NOT_KEPT = "您没有同意保存，发来的照片就没有保存。"


THANKS = "谢谢您的信任，已记下您同意。"
REFUSED_SKIP = "没关系，这一项就不填了。"
REFUSED_PHOTOS = "没关系，照片和位置就不保存了。"
PHOTO_NOT_KEPT = "您没有同意保存个人信息，这张照片就不保存了。"
NOT_ASKED_YET = (
    "谢谢。下次预约要留电话、地址或照片时，会先告诉您怎么用、保存多久，到时回复“同意”就行。"
)


def cannot_without(title: str, duty_phone: str | None) -> str:
    """Refused at a question the service cannot do without: what else they can do."""
    call = f"打社区电话 {duty_phone}，" if duty_phone else ""
    return (
        f"没关系，尊重您的选择。「{title}」需要留电话和地址，工作人员才能联系您、上门办，"
        f"所以在这里先预约不了。\n"
        f"您可以{call}或者到居委会请工作人员帮您代办；"
        f"不用留电话的服务（比如讲座）照样可以在这里报名。"
    )


WITHDRAWN = (
    "好的，已经撤回您的同意。我们不再保存您的电话和地址用于以后的预约，"
    "服务单位在您新的订单里也看不到您的电话。\n"
    "正在办的订单，单位之前已经拿到联系方式，办完为止。以后再预约需要留电话时，会再问您。"
)
WITHDRAWN_MID_FORM = (
    "好的，已经撤回您的同意。这次预约里您留的电话、地址和照片都不保存了。"
    "要接着预约的话，我们再问一次："
)
NOTHING_TO_WITHDRAW = "您现在没有同意过保存个人信息，不用撤回。"


def kept(info: Kept, topics: list[str], zone: dt.tzinfo) -> str:
    """我的信息: all that is kept, with the phone partly hidden and, for orders already
    done, the day their contact details go."""
    lines = ["我们保存了您的这些信息："]
    lines.append(f"称呼：{info.name or '没有'}")
    lines.append(f"电话：{mask_phone(info.phone) if info.phone else '没有'}")
    lines.append(f"地址：{'、'.join(info.addresses) if info.addresses else '没有'}")
    if info.open_orders:
        lines.append("正在办的订单（办完前单位能看到您的联系方式）：")
        lines += [f"  {o.code} {o.title}（{o.status}）" for o in info.open_orders]
    else:
        lines.append("正在办的订单：没有")
    for done in info.closed_orders:
        order = done.order
        lines.append(
            f"办完的订单 {order.code} {order.title}：联系方式保存到{_day(done.until, zone)}"
        )
    if info.anonymised_orders:
        lines.append(f"只留作统计的订单：{info.anonymised_orders}个（已经没有您的联系方式）")
    counts = info.texts
    if counts is not None and counts.photos:
        lines.append(f"您发的照片：{counts.photos}张")
    said = counts.needs + counts.remarks + counts.handoffs if counts is not None else 0
    if said:
        lines.append(f"您的留言：{said}条（工作人员处理用）")
    lines.append(f"订阅的提醒：{'、'.join(topics) if topics else '没有'}")
    lines.append(consent_line(info, zone))
    if info.erasure_pending:
        lines.append("您申请过删除信息：正在办的订单办完后，就全部删除。")
    lines.append("撤回同意请回复“撤回同意”，删除请回复“删除我的信息”。")
    return "\n".join(lines)


def _day(at: dt.datetime, zone: dt.tzinfo) -> str:
    local = at.astimezone(zone)
    return f"{local.year}年{local.month}月{local.day}日"


def consent_line(info: Kept, zone: dt.tzinfo) -> str:
    row = info.consent
    if row is None:
        return "个人信息同意：还没有问过您"
    when = _day(row.created_at, zone)
    if info.current:
        return f"个人信息同意：{when}您同意了"
    if row.action == "given":
        return f"个人信息同意：说明有更新，下次留电话时会再问您（上次{when}同意）"
    if row.action == "withdrawn":
        return f"个人信息同意：{when}您撤回了"
    return f"个人信息同意：{when}您没有同意"
