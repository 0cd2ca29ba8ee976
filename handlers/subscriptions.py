"""Residents manage their campaign subscriptions: 订阅 / 退订 / 退订全部 / 我的订阅."""

from __future__ import annotations

from bot.dispatch import Command, Context, Router
from catalog import topics as campaign
from handlers import texts
from storage.repositories import residents
from storage.repositories import subscriptions as repo

router = Router("subscriptions")


@router.on(Command("退订全部", "全部退订", "取消全部订阅"))
async def stop_all(ctx: Context) -> str:
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, ctx.openid)
        await repo.unsubscribe(session, resident.id)
    return texts.UNSUBSCRIBED_ALL


@router.on(Command("我的订阅", "订阅列表"))
async def mine(ctx: Context) -> str:
    async with ctx.sessionmaker() as session:
        resident = await residents.find_resident(session, ctx.community_id, ctx.openid)
        subscribed = await repo.topics_of(session, resident.id) if resident else set()
    return texts.subscriptions(
        [t.name for t in campaign.topics(ctx.catalog) if t.id in subscribed],
        [t.name for t in campaign.topics(ctx.catalog) if t.id not in subscribed],
    )


@router.on(Command("订阅"))
async def start(ctx: Context, args: str) -> str:
    topic = campaign.find(ctx.catalog, args) if args else None
    if topic is None:
        return texts.which_topic("订阅", [t.name for t in campaign.topics(ctx.catalog)])
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, ctx.openid)
        await repo.subscribe(session, resident.id, [topic.id])
    return texts.subscribed(topic.name)


@router.on(Command("退订", "取消订阅"))
async def stop(ctx: Context, args: str) -> str:
    topic = campaign.find(ctx.catalog, args) if args else None
    if topic is None:
        return texts.which_topic("退订", [t.name for t in campaign.topics(ctx.catalog)])
    async with ctx.sessionmaker.begin() as session:
        resident = await residents.resident_for(session, ctx.community_id, ctx.openid)
        await repo.unsubscribe(session, resident.id, [topic.id])
    return texts.unsubscribed(topic.name)
