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
