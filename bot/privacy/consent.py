"""Notice and consent (个人信息保护法): whether a resident agreed to the current notice,
recording their answer and withdrawing it (what is kept about a resident is
``bot.privacy.kept``).

A phone, an address or a photo is collected only after the notice was shown (once, with
the first such question) and agreed to. The notice has a version: a new wording
(``NOTICE_VERSION`` raised) asks everyone again. Answers are added, never changed: the
latest counts, the rest are the proof. Each is keyed by the message that gave it, so a
retried WeChat message records once.

Withdrawing stops further use: the phone and address remembered for later forms are
forgotten (so units see no phone on the resident's new orders, and the next form asks
again, with the notice). What an open order already holds stays with it until it is
done; erasing it is 删除我的信息's job.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Consent, Resident
from storage.repositories import consents as repo
from storage.repositories import residents

NOTICE_VERSION = 1
"""Raise it when the notice's wording changes: every resident is asked again."""

PERSONAL_KINDS = frozenset({"phone", "building"})
"""Form questions that collect personal information (photos and places are asked for
consent when they arrive)."""

GIVEN, REFUSED, WITHDRAWN = "given", "refused", "withdrawn"
SAID, ANSWERED, IN_PERSON = "said", "answered", "in_person"

_YES = frozenset({"同意", "我同意", "同意了", "同意的", "愿意", "我愿意", "好的同意", "可以同意"})
_NO = frozenset({"不同意", "我不同意", "不愿意", "我不愿意", "拒绝"})
_PUNCTUATION = " 。.!！,，~～"


def agrees(text: str) -> bool:
    return text.strip(_PUNCTUATION) in _YES


def refuses(text: str) -> bool:
    return text.strip(_PUNCTUATION) in _NO


def is_current(row: Consent | None) -> bool:
    """The latest answer is a yes to the notice as it reads now."""
    return row is not None and row.action == GIVEN and row.notice_version == NOTICE_VERSION


async def has_consent(session: AsyncSession, community_id: str, openid: str) -> bool:
    resident = await residents.find_resident(session, community_id, openid)
    return resident is not None and is_current(await repo.latest(session, resident.id))


async def answer(
    session: AsyncSession,
    *,
    community_id: str,
    openid: str,
    message_key: str,
    action: str,
    method: str,
    now: dt.datetime,
) -> Resident:
    """Record a resident's answer in chat (given or refused); withdrawing is
    :func:`withdraw`. Returns the resident (created on first use)."""
    resident = await residents.resident_for(session, community_id, openid)
    await _answer(session, resident, message_key, action, method, now)
    return resident


async def withdraw(
    session: AsyncSession,
    resident: Resident,
    *,
    message_key: str,
    now: dt.datetime,
    method: str = SAID,
    actor: str | None = None,
) -> None:
    """Record the withdrawal and forget the phone and address kept for later forms."""
    await _answer(session, resident, message_key, WITHDRAWN, method, now, actor)
    resident.phone = None
    resident.building = None


async def give_in_person(
    session: AsyncSession, resident: Resident, *, key: str, actor: str, now: dt.datetime
) -> None:
    """Consent a resident gave staff in person (at the console, read the notice aloud)."""
    await _answer(session, resident, key, GIVEN, IN_PERSON, now, actor)


async def _answer(
    session: AsyncSession,
    resident: Resident,
    key: str,
    action: str,
    method: str,
    now: dt.datetime,
    actor: str | None = None,
) -> None:
    """One answer to the notice as it reads now, keyed by what gave it."""
    await repo.record(
        session,
        community_id=resident.community_id,
        resident_id=resident.id,
        message_key=key,
        action=action,
        notice_version=NOTICE_VERSION,
        method=method,
        actor=actor,
        at=now,
    )
