"""Acting on due reminders: chase units, escalate, remind residents, follow up (回访).

A :class:`~bot.jobs.rows.RowJob`: each batch is claimed, acted on and marked in one
transaction, so a reminder fires exactly once: if the process dies half-way, the
transaction rolls back and the reminders are still due for the next poll (or the
next process). A reminder that is no longer relevant when it comes due (the order
was accepted, the slot is over) is marked ``skipped``; one more than a week late
is skipped as pointless.

Each reminder is acted on inside its own savepoint: one that fails (an order whose
unit has been retired from the catalog, say) has its effects undone, is marked
``failed`` with the reason, and the rest of the batch goes on. Before, one bad row
rolled the whole batch back and came first again at every poll, so no reminder of
any community fired again.

Runs in every process, no leader needed: the claim takes rows no other process holds,
and the orders of a batch are locked in id order, so two processes whose batches
touch the same orders wait for each other instead of deadlocking.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.jobs.rows import Outcomes, RowJob
from bot.orders import domain, effects
from bot.tenants import Accounts, UnknownCommunity
from catalog.model import Catalog
from storage import models
from storage.order_status import OrderStatus
from storage.repositories import ordering, remarks
from storage.repositories import reminders as repo

log = logging.getLogger(__name__)

TOO_LATE = dt.timedelta(days=7)


@dataclass
class Batch:
    """What a batch of reminders needs: its orders' facts and their catalogs."""

    facts: dict[int, effects.OrderFacts] = field(default_factory=dict)
    catalogs: dict[str, Catalog] = field(default_factory=dict)


class ReminderRunner(RowJob[models.Reminder, Batch]):
    what = "reminder"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: Accounts,
        policy: effects.Policy,
        clock: Clock,
        *,
        batch: int = 500,
    ) -> None:
        super().__init__(sessionmaker, clock, batch=batch)
        self._accounts = accounts
        self._policy = policy

    def label(self, row: models.Reminder) -> str:
        return f"{row.id} ({row.key})"

    async def claim(
        self, session: AsyncSession, now: dt.datetime, limit: int
    ) -> list[models.Reminder]:
        return await repo.claim_due(
            session, now=now, limit=limit, communities=[a.id for a in self._accounts]
        )

    async def prepare(
        self, session: AsyncSession, rows: Sequence[models.Reminder], now: dt.datetime
    ) -> Batch:
        order_ids = {r.order_id for r in rows if r.order_id is not None}
        if not order_ids:
            return Batch()
        orders = list(
            await session.scalars(
                select(models.Order)
                .where(models.Order.id.in_(order_ids))
                .order_by(models.Order.id)  # one lock order for every process: no deadlock
                .with_for_update()
            )
        )
        batch = Batch()
        for community_id in {o.community_id for o in orders}:
            catalog = self._catalog(community_id)
            if catalog is not None:
                batch.catalogs[community_id] = catalog
                mine = [o for o in orders if o.community_id == community_id]
                batch.facts.update(await effects.load_many_facts(session, catalog, mine))
        return batch

    async def act(
        self, session: AsyncSession, row: models.Reminder, prepared: Batch, now: dt.datetime
    ) -> bool:
        found = prepared.facts.get(row.order_id) if row.order_id is not None else None
        return (
            found is not None
            and now - row.due_at <= TOO_LATE
            and await self._fire(
                session, row, found, now, prepared.catalogs[found.order.community_id]
            )
        )

    async def settle(
        self, session: AsyncSession, outcomes: Outcomes[models.Reminder], now: dt.datetime
    ) -> None:
        await repo.finish(session, [r.id for r in outcomes.done], "done", now=now)
        await repo.finish(session, [r.id for r in outcomes.skipped], "skipped", now=now)
        await repo.fail(session, [(r.id, error) for r, error in outcomes.failed], now=now)

    def _catalog(self, community_id: str) -> Catalog | None:
        try:
            return self._accounts[community_id].catalog.current
        except UnknownCommunity:
            log.warning("reminders of community %r: not served here, skipped", community_id)
            return None

    async def _fire(
        self,
        session: AsyncSession,
        reminder: models.Reminder,
        facts: effects.OrderFacts,
        now: dt.datetime,
        catalog: Catalog,
    ) -> bool:
        order = facts.order
        status = OrderStatus(order.status)
        code, title = order.code, facts.item.title

        if reminder.kind in ("accept_remind", "escalate") and reminder.note not in (
            None,
            facts.unit,
        ):
            return False  # scheduled for a unit the order was taken away from
        if reminder.kind == "accept_remind":
            if status is not OrderStatus.DISPATCHED:
                return False
            lines = [
                f"【催办】{title}",
                f"订单号 {code} 派单后还没有接单，请尽快回复“接单 {code}”。",
            ]
            await effects.notify_unit(
                session, catalog, facts.unit, f"remind:{reminder.id}", "催办", lines, order.id
            )
            return True
        if reminder.kind == "escalate":
            if status is not OrderStatus.DISPATCHED:
                return False
            # Staff are alerted by the domain, keyed by the escalation's event.
            await domain.transition(
                session,
                order,
                OrderStatus.ESCALATED,
                actor="system",
                reason="超时未接单",
                catalog=catalog,
                policy=self._policy,
                now=now,
            )
            return True
        if reminder.kind == effects.SLOT_EVE:
            if status not in (OrderStatus.DISPATCHED, OrderStatus.ACCEPTED, OrderStatus.ESCALATED):
                return False
            if facts.starts_at is None or facts.starts_at <= now or facts.openid is None:
                return False
            local = facts.starts_at.astimezone(self._policy.worktime(catalog).zone)
            text = f"提醒您：{local.month}月{local.day}日 {local:%H:%M}"
            text += f" 在{facts.location}" if facts.location else ""
            text += f"有「{title}」，订单号 {code}。"
            if facts.item.next_steps:
                text += facts.item.next_steps
            text += "去不了的话直接回复“去不了了”，把名额让给别人。"
            await effects.notify_resident(
                session,
                catalog,
                self._policy,
                facts.openid,
                f"eve:{reminder.id}",
                text,
                now,
                order.id,
            )
            return True
        if reminder.kind == "rate_ask":
            # 回访: solved or not, and a rating if they like; never pressed for one.
            if status is not OrderStatus.COMPLETED or facts.openid is None:
                return False
            if await remarks.said_solved_since_completion(session, order.id):
                return False  # they already said 解决了
            text = (
                f"回访：您的订单 {code}（{title}）办完了。{effects.FOLLOWUP_QUESTION}"
                "愿意的话也可以打个分（1到5分），不打也没关系。"
            )
            await effects.notify_resident(
                session,
                catalog,
                self._policy,
                facts.openid,
                f"rate:{reminder.id}",
                text,
                now,
                order.id,
            )
            return True
        if reminder.kind == effects.FOLLOWUP_AGAIN:
            # The second 回访, once, and only if this completion still stands.
            if status not in (OrderStatus.COMPLETED, OrderStatus.RATED) or facts.openid is None:
                return False
            if await ordering.latest_completion(session, order.id) != int(reminder.note or 0):
                return False
            unit = facts.unit_name
            text = (
                f"回访：您的订单 {code}（{title}）办完有些日子了，现在还好吗？"
                f"如果问题又出现了，回复“没解决”，我们请{unit}再来看看；一切都好就不用回复。"
            )
            await effects.notify_resident(
                session, catalog, self._policy, facts.openid, f"again:{reminder.id}", text, now
            )
            return True
        log.warning("unknown reminder kind %r (%s)", reminder.kind, reminder.key)
        return False
