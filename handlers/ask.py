"""A need in the resident's own words: say which service fits, or note it as unmet.

The ordering conversation (forms, confirmation, orders) builds on this; here the
resident learns what the community offers for their need.
"""

from __future__ import annotations

from bot.dispatch import Context, Kind, Matched, Predicate, Router
from bot.wechat.inbound import Incoming
from catalog.matcher import MatchResult
from storage.repositories.needs import record_unmet_need

router = Router("ask")

has_text = Predicate(lambda msg, ctx: bool(msg.text))


@router.on(Kind("text", "voice"), Matched("matched"))
async def one_service(ctx: Context, match: MatchResult) -> str:
    assert match.item is not None
    item = ctx.catalog.item(match.item)
    unit = ctx.catalog.unit(item.unit)
    return (
        f"您需要的应该是「{item.title}」，由{unit.name}提供。\n{_first_sentence(item.description)}"
    )


@router.on(Kind("text", "voice"), Matched("ambiguous"))
async def some_services(ctx: Context, match: MatchResult) -> str:
    lines = ["您说的可能是下面这几项："]
    for number, candidate in enumerate(match.candidates, start=1):
        item = ctx.catalog.item(candidate.item)
        lines.append(f"{number}. {item.title}（{ctx.catalog.unit(item.unit).name}）")
    return "\n".join(lines)


@router.on(Kind("text", "voice"), has_text)
async def no_service(msg: Incoming, ctx: Context) -> str:
    """Nothing fits: keep the need for staff (需求清单) and say what there is."""
    match = ctx.match()
    async with ctx.sessionmaker.begin() as session:
        await record_unmet_need(
            session,
            community_id=ctx.community_id,
            result=match,
            catalog_version=ctx.catalog.version,
            openid=msg.openid,
            message_key=ctx.message_key,
        )
    categories = "、".join(ctx.catalog.categories)
    return (
        "这个需求我已经记下了，会转给社区工作人员，看看能不能想办法安排。\n"
        f"社区现在能提供的服务有：{categories}。发“帮助”可以看怎么使用。"
    )


def _first_sentence(text: str) -> str:
    for mark in "。！？":
        if mark in text:
            return text.split(mark, 1)[0] + mark
    return text
