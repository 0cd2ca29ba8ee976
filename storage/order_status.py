"""Order statuses and the transitions allowed between them, in one place.

群众点单 → 社区派单 → 单位接单 → 群众评单: a resident's order is *submitted*, the
community *dispatches* it to the unit, the unit *accepts*, *starts* and *completes*
it, and the resident *rates* it. Units may *return* an order (with a reason) for the
community to re-dispatch; overdue orders are *escalated* to staff; staff *close*
what cannot go further.
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
}

OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.DISPATCHED,
        OrderStatus.ACCEPTED,
        OrderStatus.IN_SERVICE,
        OrderStatus.RETURNED,
        OrderStatus.ESCALATED,
    }
)


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
            OrderStatus.RETURNED,
            OrderStatus.CANCELLED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
            OrderStatus.DISPATCHED,  # re-dispatch to another unit
        }
    ),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.IN_SERVICE,
            OrderStatus.RETURNED,
            OrderStatus.CANCELLED,
            OrderStatus.ESCALATED,
            OrderStatus.CLOSED,
        }
    ),
    OrderStatus.IN_SERVICE: frozenset(
        {OrderStatus.COMPLETED, OrderStatus.ESCALATED, OrderStatus.CLOSED}
    ),
    OrderStatus.COMPLETED: frozenset({OrderStatus.RATED, OrderStatus.CLOSED}),
    OrderStatus.RETURNED: frozenset(
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
        }
    ),
    OrderStatus.RATED: frozenset(),
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
