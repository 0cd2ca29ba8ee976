"""Acting on due reminders: chase units, escalate, remind residents, ask for ratings.

Each batch is claimed, acted on and marked in one transaction, so a reminder fires
exactly once: if the process dies half-way, the transaction rolls back and the
reminders are still due for the next poll (or the next process). A reminder that is
no longer relevant when it comes due (the order was accepted, the session is over)
is marked ``skipped``; one more than a week late is skipped as pointless.

Each reminder is acted on inside its own savepoint: one that fails (an order whose
unit has been retired from the catalog, say) has its effects undone, is marked
``failed`` with the reason, and the rest of the batch goes on. Before, one bad row
rolled the whole batch back and came first again at every poll, so no reminder of
any community fired again.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.orders import domain, effects
from bot.tenants import Accounts, UnknownCommunity
from catalog.model import Catalog
from storage import models
from storage.errors import database_unavailable
from storage.order_status import OrderStatus
from storage.repositories import reminders as repo

log = logging.getLogger(__name__)

TOO_LATE = dt.timedelta(days=7)


class ReminderRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: Accounts,
        policy: effects.Policy,
        clock: Clock,
        *,
        batch: int = 500,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._accounts = accounts
        self._policy = policy
        self._clock = clock
        self._batch = batch

    async def run_once(self) -> int:
        """Fire everything due now, a batch per transaction; the number handled."""
        total = 0
        while True:
            handled = await self._run_batch()
            total += handled
            if handled < self._batch:
                return total

    async def _run_batch(self) -> int:
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            due = await repo.claim_due(
                session, now=now, limit=self._batch, communities=[a.id for a in self._accounts]
            )
            order_ids = {r.order_id for r in due if r.order_id is not None}
            orders = (
                list(
                    await session.scalars(
                        select(models.Order).where(models.Order.id.in_(order_ids)).with_for_update()
                    )
                )
                if order_ids
                else []
            )
            facts: dict[int, effects.OrderFacts] = {}
            catalogs: dict[str, Catalog] = {}
            for community_id in {o.community_id for o in orders}:
                catalog = self._catalog(community_id)
                if catalog is not None:
                    catalogs[community_id] = catalog
                    mine = [o for o in orders if o.community_id == community_id]
                    facts.update(await effects.load_many_facts(session, catalog, mine))
            fired: list[int] = []
            skipped: list[int] = []
            failed: list[tuple[int, str]] = []
            for reminder in due:
                found = facts.get(reminder.order_id) if reminder.order_id is not None else None
                try:
                    async with session.begin_nested():
                        relevant = (
                            found is not None
                            and now - reminder.due_at <= TOO_LATE
                            and await self._fire(
                                session, reminder, found, now, catalogs[found.order.community_id]
                            )
                        )
                except Exception as exc:
                    if database_unavailable(exc):
                        raise  # not this row's fault: the batch is retried whole
                    log.exception("reminder %s (%s) failed", reminder.id, reminder.key)
                    failed.append((reminder.id, f"{type(exc).__name__}: {exc}"))
                    continue
                (fired if relevant else skipped).append(reminder.id)
            await repo.finish(session, fired, "done", now=now)
            await repo.finish(session, skipped, "skipped", now=now)
            await repo.fail(session, failed, now=now)
        if due:
            log.info("reminders: %d fired, %d no longer relevant", len(fired), len(skipped))
        return len(due)

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
                session, catalog, facts.unit, f"remind:{reminder.id}", "催办", lines
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
        if reminder.kind == "session_eve":
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
                session, catalog, self._policy, facts.openid, f"eve:{reminder.id}", text, now
            )
            return True
        if reminder.kind == "rate_ask":
            if status is not OrderStatus.COMPLETED or facts.openid is None:
                return False
            text = (
                f"您的订单 {code}（{title}）办完了，您满意吗？"
                "直接回复几分（1到5分，比如“5分”），也可以说说您的意见。"
            )
            await effects.notify_resident(
                session, catalog, self._policy, facts.openid, f"rate:{reminder.id}", text, now
            )
            return True
        log.warning("unknown reminder kind %r (%s)", reminder.kind, reminder.key)
        return False
