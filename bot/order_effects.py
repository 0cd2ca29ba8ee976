"""Moved to the order domain: ``bot.orders.effects`` (and ``bot.orders.domain``).

Kept for the modules being changed elsewhere at the same time (bot/webhook.py,
bot/dispatch/router.py, bot/cli.py): delete once they import from ``bot.orders``.
``announce_new_order`` is the domain's dispatch of a just-submitted order.
"""

from __future__ import annotations

from bot.orders.domain import dispatch_new as announce_new_order
from bot.orders.effects import Policy

__all__ = ["Policy", "announce_new_order"]
