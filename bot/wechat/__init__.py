"""Talking to WeChat: the outbound API client (``api``), its errors and token cache,
and custom menu files (``menu``).

The CLICK keys of the default custom menu live here because two sides must agree on
them: ``order-menu menu push`` puts them on the buttons, and the handlers routing
CLICK events match on them.
"""

from __future__ import annotations

from typing import Any

MENU_SERVICES = "MENU_SERVICES"
"""CLICK key of 服务点单: show the services residents can order."""
MY_ORDERS = "MY_ORDERS"
"""CLICK key of 我的订单: the resident's orders and their status."""
HELP = "HELP"
"""CLICK key of 帮助: what the bot can do."""


def default_menu() -> dict[str, Any]:
    """The menu pushed when no file is given: three CLICK buttons (a fresh copy each time)."""
    return {
        "button": [
            {"type": "click", "name": "服务点单", "key": MENU_SERVICES},
            {"type": "click", "name": "我的订单", "key": MY_ORDERS},
            {"type": "click", "name": "帮助", "key": HELP},
        ]
    }
