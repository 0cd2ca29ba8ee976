"""Order statuses and the transitions allowed between them, in one place.

群众点单 → 社区派单 → 单位接单 → 群众评单: a resident's order is *submitted*, the
community *dispatches* it to the unit, the unit *accepts*, *starts* and *completes*
it, and the resident *rates* it. After completion the resident is asked whether it
was solved (回访): *reopened* when not, back to the same unit. A unit may also say
honestly how an order ended: *not possible* (办不了, with a reason, final), *misrouted*
(不归我管: back to staff to re-dispatch, not counted against the unit), or ask to
*return* it (退单, with a reason: *return asked* until staff approve, then *returned*
for re-dispatch; refused, it goes back to where it was). Overdue orders are
*escalated* to staff; staff *close* what cannot go further.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    RATED = "rated"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"
    CLOSED = "closed"
    REOPENED = "reopened"
    NOT_POSSIBLE = "not_possible"
    MISROUTED = "misrouted"
    RETURN_ASKED = "return_asked"

    @property
    def label(self) -> str:
        """How the status is named to residents and staff."""
        return LABELS[self]


LABELS: dict[OrderStatus, str] = {
    OrderStatus.SUBMITTED: "已提交",
    OrderStatus.DISPATCHED: "已派单",
    OrderStatus.ACCEPTED: "已接单",
    OrderStatus.IN_SERVICE: "服务中",
    OrderStatus.COMPLETED: "已完成",
    OrderStatus.RATED: "已评价",
    OrderStatus.RETURNED: "已退回",
    OrderStatus.CANCELLED: "已取消",
    OrderStatus.ESCALATED: "已督办",
    OrderStatus.CLOSED: "已关闭",
    OrderStatus.REOPENED: "已重办",
    OrderStatus.NOT_POSSIBLE: "办不了",
    OrderStatus.MISROUTED: "待改派",
    OrderStatus.RETURN_ASKED: "退单待批",
}

OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.DISPATCHED,
        OrderStatus.ACCEPTED,
        OrderStatus.IN_SERVICE,
        OrderStatus.RETURNED,
        OrderStatus.ESCALATED,
        OrderStatus.REOPENED,
        OrderStatus.MISROUTED,
        OrderStatus.RETURN_ASKED,
    }
)

WITH_UNIT = frozenset(
    {
        OrderStatus.DISPATCHED,
        OrderStatus.ACCEPTED,
        OrderStatus.IN_SERVICE,
        OrderStatus.ESCALATED,
        OrderStatus.REOPENED,
    }
)
"""Open statuses in which the unit holds the order: it may act on it, and may say it
cannot (办不了), that it is not theirs (不归我管), or ask to return it (退单)."""

HONEST_OUTCOMES = frozenset(
    {OrderStatus.NOT_POSSIBLE, OrderStatus.MISROUTED, OrderStatus.RETURN_ASKED}
)

RESUMED_AFTER_REFUSAL = WITH_UNIT
"""Where a refused 退单 goes back to: the status the order had when it was asked for
(the domain checks it is that one)."""


def parse_status(text: str) -> OrderStatus:
    """Accept the English name or the Chinese label; raise ValueError naming the choices."""
    value = text.strip().lower()
    for status in OrderStatus:
        if value == status.value or text.strip() == status.label:
            return status
    choices = ", ".join(s.value for s in OrderStatus)
    raise ValueError(f"unknown status '{text}'; expected one of: {choices}")


# Who may move an order where. Staff may also close anything still open; the
# scheduler escalates overdue orders. Resident cancellation ends once the unit has
# started the service (in_service).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.SUBMITTED: frozenset(
        {OrderStatus.DISPATCHED, OrderStatus.CANCELLED, OrderStatus.ESCALATED, OrderStatus.CLOSED}
    ),
    OrderStatus.DISPATCHED: frozenset(
        {
            OrderStatus.ACCEPTED,
            OrderStatus.CANCELLED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
            OrderStatus.DISPATCHED,  # re-dispatch to another unit
            *HONEST_OUTCOMES,
        }
    ),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.IN_SERVICE,
            OrderStatus.CANCELLED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
            *HONEST_OUTCOMES,
        }
    ),
    OrderStatus.IN_SERVICE: frozenset(
        {
            OrderStatus.COMPLETED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
            OrderStatus.NOT_POSSIBLE,
            OrderStatus.RETURN_ASKED,
        }
    ),
    # 回访: the resident says it is not solved (also after rating it, e.g. at the
    # second follow-up): the order goes back to the same unit.
    OrderStatus.COMPLETED: frozenset({OrderStatus.RATED, OrderStatus.CLOSED, OrderStatus.REOPENED}),
    OrderStatus.RATED: frozenset({OrderStatus.REOPENED}),
    OrderStatus.REOPENED: frozenset(
        {
            OrderStatus.ACCEPTED,
            OrderStatus.IN_SERVICE,
            OrderStatus.COMPLETED,
            OrderStatus.CANCELLED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
            OrderStatus.DISPATCHED,  # staff give it to another unit
            *HONEST_OUTCOMES,
        }
    ),
    OrderStatus.RETURN_ASKED: frozenset(
        {
            OrderStatus.RETURNED,  # staff approve the 退单
            *RESUMED_AFTER_REFUSAL,  # staff refuse it: back to where it was
            OrderStatus.CANCELLED,
            OrderStatus.CLOSED,
        }
    ),
    OrderStatus.RETURNED: frozenset(
        {OrderStatus.DISPATCHED, OrderStatus.CANCELLED, OrderStatus.CLOSED}
    ),
    OrderStatus.MISROUTED: frozenset(
        {OrderStatus.DISPATCHED, OrderStatus.CANCELLED, OrderStatus.CLOSED}
    ),
    OrderStatus.ESCALATED: frozenset(
        {
            OrderStatus.DISPATCHED,
            OrderStatus.ACCEPTED,
            OrderStatus.IN_SERVICE,
            OrderStatus.COMPLETED,
            OrderStatus.CANCELLED,
            OrderStatus.CLOSED,
            *HONEST_OUTCOMES,
        }
    ),
    OrderStatus.NOT_POSSIBLE: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.CLOSED: frozenset(),
}

CANCELLABLE_BY_RESIDENT = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.DISPATCHED,
        OrderStatus.ACCEPTED,
        OrderStatus.RETURNED,
        OrderStatus.ESCALATED,
        OrderStatus.REOPENED,
        OrderStatus.MISROUTED,
        OrderStatus.RETURN_ASKED,
    }
)


class IllegalTransition(ValueError):
    """An order cannot move from its status to the one asked for."""

    def __init__(self, code: str, current: OrderStatus, wanted: OrderStatus) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final)"
        super().__init__(
            f"order {code} is {current.value}; it cannot become {wanted.value} "
            f"(from {current.value}: {allowed})"
        )
        self.code = code
        self.current = current
        self.wanted = wanted


def check_transition(code: str, current: OrderStatus, wanted: OrderStatus) -> None:
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(code, current, wanted)
