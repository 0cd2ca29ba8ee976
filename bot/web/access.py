"""Records of who saw residents' personal information (个人信息保护法: records of
access), and how much of a phone number a user may see in an export.

Every view of a resident's contact details or photos on an order's page, and every
export of a table with residents in it, writes one audit entry. It is queued and
written behind the page (``bot.privacy.access``): a page that only reads answers at
once even while another request holds SQLite's write lock. Staff see the entries on
the audit page.
"""

from __future__ import annotations

from aiohttp import web

from bot import keys
from catalog.answers import mask_phone
from storage.repositories.users import SignedIn

VIEW_CONTACT = "view.contact"
VIEW_RESIDENT = "privacy_view"
CONSENT_IN_PERSON = "consent_in_person"
CONSENT_WITHDRAWN = "consent_withdrawn"
ERASE_RESIDENT = "erase_resident"
EXPORT_ORDERS = "export.orders"
EXPORT_COVERAGE = "export.coverage"
ACTIONS_ZH = {
    VIEW_CONTACT: "查看居民联系方式或照片",
    EXPORT_ORDERS: "导出订单表",
    EXPORT_COVERAGE: "导出宣传覆盖表",
    VIEW_RESIDENT: "查看居民信息",
    CONSENT_IN_PERSON: "记录居民当面同意",
    CONSENT_WITHDRAWN: "记录居民撤回同意",
    ERASE_RESIDENT: "删除居民个人信息",
}
"""The audit page's words for these entries."""

FULL_PHONE_ROLES = frozenset({"admin"})
"""Roles whose exports carry whole phone numbers; everyone else's are masked. On an
order's page staff and the serving unit see the number (they call the resident), and
that view is recorded."""


def record(
    request: web.Request, user: SignedIn, action: str, target: str, detail: str | None = None
) -> None:
    """One audit entry for what ``user`` was just shown: queued, so the page does not
    wait for the database's write lock (``bot.privacy.access``)."""
    request.app[keys.ACCESS_LOG].record(user.community_id, user.username, action, target, detail)


def phone_for(user: SignedIn, phone: str | None) -> str:
    """A phone number in an export, as ``user``'s role may see it."""
    if not phone:
        return ""
    return phone if user.role in FULL_PHONE_ROLES else mask_phone(phone)


def who(name: str | None, phone: str | None) -> str:
    """A resident as an audit entry names them for staff: 称呼 and masked phone, never
    an internal id (王阿姨（138****5678）)."""
    label = name or "未留称呼的居民"
    return f"{label}（{mask_phone(phone)}）" if phone else label
