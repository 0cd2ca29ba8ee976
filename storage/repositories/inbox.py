"""The learning inbox (学习箱): messages the bot did not understand, and what staff
decided they mean.

The conversation records a message here when it matched nothing, when several
services had to be offered, or when the resident answered the bot's guess with
不是 or 取消 (:func:`record_for_inbox`). Staff see them grouped by similar wording
(:func:`inbox_page`) and decide what a phrase means (:func:`decide`); the decisions
in effect (:func:`learning_of`) are applied to the catalog by every process
(``catalog/learned.py``), which polls :func:`learned_revisions` to notice new ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.learned import ACTIONS, Learned, Learning, phrase_of, phrase_problem
from catalog.matcher import WINDOW, Candidate
from catalog.normalize import normalize
from storage.engine import dialect_name
from storage.models import InboxMessage, LearnedDecision
from storage.repositories.users import audit

Reason = Literal["none", "ambiguous", "rejected"]
REASONS: tuple[Reason, ...] = ("none", "ambiguous", "rejected")
FORGET = "forget"
"""The action that withdraws the decision in effect for a phrase."""

INBOX_WINDOW = 5000
"""Open messages the inbox page groups, newest first. Bounds the page's cost (about
0.1 s for 5,000 messages of varied wording); older ones show once newer ones are dealt with."""


async def record_for_inbox(
    session: AsyncSession,
    *,
    community_id: str,
    openid: str,
    message_key: str,
    text: str,
    reason: Reason,
    candidates: Iterable[Candidate | Mapping[str, Any] | str],
    catalog_version: str,
) -> None:
    """Keep a message the bot did not understand for staff to teach it; the caller
    commits. A retried message (same key and reason) is kept once.

    ``candidates`` are the items offered or guessed, best first: the matcher's
    ``Candidate``s, ``{"item": id, "score": s}`` mappings, or bare item ids."""
    if reason not in REASONS:
        raise ValueError(f"unknown inbox reason {reason!r}")
    kept = text[:WINDOW]
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    statement = insert(InboxMessage).values(
        community_id=community_id,
        openid=openid,
        message_key=message_key,
        text=kept,
        normalized=normalize(kept),
        reason=reason,
        candidates=[_candidate(c) for c in candidates][:3],
        catalog_version=catalog_version,
    )
    await session.execute(statement.on_conflict_do_nothing())


def _candidate(candidate: Candidate | Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(candidate, str):
        return {"item": candidate, "score": 0.0}
    if isinstance(candidate, Candidate):
        return {"item": candidate.item, "score": round(candidate.score, 4)}
    return {"item": str(candidate["item"]), "score": round(float(candidate.get("score", 0)), 4)}


# --- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRow:
    """A decision in effect, for the console and ``catalog export``."""

    phrase: str
    action: str
    target: str | None
    decided_by: str
    decided_at: dt.datetime

    @property
    def learned(self) -> Learned:
        return Learned(self.phrase, self.action, self.target)  # type: ignore[arg-type]


async def decide(
    session: AsyncSession,
    *,
    community_id: str,
    phrase: str,
    action: str,
    target: str | None,
    decided_by: str,
    messages: Sequence[int] = (),
    note: str | None = None,
) -> LearnedDecision:
    """Record what ``phrase`` means, mark the inbox messages it deals with, and write
    the audit entry; the caller commits (and checks that ``target`` exists).

    ``action`` is ``synonym`` or ``faq`` (with the item's or FAQ entry's id as
    ``target``), ``ignore``, or ``forget`` (withdraw the phrase's decision; no
    target). The messages dealt with are those listed (a group on the console page)
    and every open one that says exactly the phrase. ``note`` is the audit entry's
    detail, in the staff's words. Raises ``ValueError`` for a phrase or action
    that cannot be recorded."""
    canonical = phrase_of(phrase)
    problem = phrase_problem(canonical)
    if problem:
        raise ValueError(problem)
    if action not in (*ACTIONS, FORGET):
        raise ValueError(f"unknown action {action!r}")
    if (action in ("synonym", "faq")) != (target is not None):
        raise ValueError(f"action {action!r} {'needs' if target is None else 'takes no'} target")
    decision = LearnedDecision(
        community_id=community_id,
        phrase=canonical,
        action=action,
        target=target,
        decided_by=decided_by,
    )
    session.add(decision)
    await session.flush()
    if action != FORGET:
        open_here = (InboxMessage.community_id == community_id) & InboxMessage.decision_id.is_(None)
        said = func.replace(InboxMessage.normalized, " ", "") == canonical
        chosen = InboxMessage.id.in_(list(messages)) if messages else said
        await session.execute(
            update(InboxMessage)
            .where(open_here, chosen | said)
            .values(decision_id=decision.id)
            .execution_options(synchronize_session=False)
        )
    await audit(session, community_id, decided_by, "learn", canonical, note)
    return decision


async def decisions_in_effect(session: AsyncSession, community_id: str) -> list[DecisionRow]:
    """The newest decision of every phrase, withdrawn ones left out, oldest first
    (the order they are applied in)."""
    rows = await session.scalars(
        select(LearnedDecision)
        .where(LearnedDecision.community_id == community_id)
        .order_by(LearnedDecision.id)
    )
    newest: dict[str, LearnedDecision] = {}
    for row in rows:
        newest.pop(row.phrase, None)  # re-inserted: a phrase decided again moves last
        newest[row.phrase] = row
    return [
        DecisionRow(r.phrase, r.action, r.target, r.decided_by, r.decided_at)
        for r in newest.values()
        if r.action != FORGET
    ]


async def learning_of(session: AsyncSession, community_id: str) -> Learning:
    """The decisions every process applies to the community's catalog."""
    revision = await session.scalar(
        select(func.max(LearnedDecision.id)).where(LearnedDecision.community_id == community_id)
    )
    if revision is None:
        return Learning()
    rows = await decisions_in_effect(session, community_id)
    return Learning(revision, tuple(r.learned for r in rows))


async def learned_revisions(session: AsyncSession) -> dict[str, int]:
    """Each community's newest decision id: one cheap query, polled with the catalog
    versions so that a decision taken in one process reaches the others."""
    rows = await session.execute(
        select(LearnedDecision.community_id, func.max(LearnedDecision.id)).group_by(
            LearnedDecision.community_id
        )
    )
    return {community_id: revision for community_id, revision in rows}


# --- the inbox, grouped ------------------------------------------------------------------


@dataclass
class InboxGroup:
    """Messages with similar wording: one decision deals with all of them."""

    phrase: str
    """The suggested phrase to teach: the commonest wording's core."""
    count: int = 0
    examples: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    closest: list[str] = field(default_factory=list)
    """Item ids the matcher came closest to for these messages, best first (≤ 3)."""
    message_ids: list[int] = field(default_factory=list)
    newest: dt.datetime | None = None


@dataclass(frozen=True)
class InboxPage:
    groups: list[InboxGroup]
    page: int
    pages: int
    open_messages: int
    """Open messages in the inbox, all of them (the page groups the newest
    :data:`INBOX_WINDOW`)."""
    grouped: int
    """Messages in the groups (of every page): the open ones in the window, less
    those left out."""


@dataclass(frozen=True)
class OpenMessage:
    id: int
    text: str
    normalized: str
    reason: str
    candidates: list[dict[str, Any]]
    created_at: dt.datetime


GroupCache = dict[tuple[str, int, int, frozenset[str]], list[InboxGroup]]
"""The last few groupings, by community, the open inbox's count and newest id, and
the items whose messages were left out."""


async def inbox_page(
    session: AsyncSession,
    community_id: str,
    *,
    page: int = 1,
    per_page: int = 20,
    hidden_items: frozenset[str] = frozenset(),
    cache: GroupCache | None = None,
) -> InboxPage:
    """One page of the open inbox's groups, the largest groups first.

    Grouping the newest :data:`INBOX_WINDOW` open messages costs ~0.1 s at the
    window's size. With a ``cache`` (one per database: the web app keeps one), the
    result is kept for as long as the open inbox is the same (its count and newest
    id, one cheap query), so turning pages costs only that query. Messages are never
    deleted: they are added, decided, or erased (their text emptied, by erasure or
    retention); an erased message is no longer open, so each change moves the count
    or the newest id. Messages whose best candidate is one of ``hidden_items`` are
    left out (confidential items: a message the bot took for a report on a cadre is
    not for every staff member's eyes)."""
    open_here = (
        (InboxMessage.community_id == community_id)
        & InboxMessage.decision_id.is_(None)
        & (InboxMessage.text != "")  # erased or past its period: nothing to learn from
    )
    total, newest = (
        await session.execute(
            select(func.count(InboxMessage.id), func.max(InboxMessage.id)).where(open_here)
        )
    ).one()
    key = (community_id, total or 0, newest or 0, hidden_items)
    groups = cache.get(key) if cache is not None else None
    if groups is None:
        rows = await session.execute(
            select(
                InboxMessage.id,
                # A long message's beginning is enough to show and to group.
                func.substr(InboxMessage.text, 1, EXAMPLE_LENGTH + 1),
                func.substr(InboxMessage.normalized, 1, GROUP_CHARACTERS),
                InboxMessage.reason,
                InboxMessage.candidates,
                InboxMessage.created_at,
            )
            .where(open_here)
            .order_by(InboxMessage.id.desc())
            .limit(INBOX_WINDOW)
        )
        found = [
            message
            for message in (OpenMessage(*row) for row in rows)
            if not (message.candidates and message.candidates[0].get("item") in hidden_items)
        ]
        groups = await asyncio.to_thread(group_messages, found)
        if cache is not None:
            cache[key] = groups
            while len(cache) > 8:
                cache.pop(next(iter(cache)))
    pages = max(1, math.ceil(len(groups) / per_page))
    page = min(max(page, 1), pages)
    return InboxPage(
        groups[(page - 1) * per_page : page * per_page],
        page,
        pages,
        total or 0,
        sum(group.count for group in groups),
    )


EXAMPLE_LENGTH = 80
"""Characters of a resident's message shown as an example."""
GROUP_CHARACTERS = 60
"""Characters of a message compared when grouping: a pasted story is grouped by its
beginning, which bounds the cost of a page."""
SIMILAR = 0.5
"""Character-pair Jaccard similarity from which two wordings are one group."""
CONTAINED = 0.75
"""...or the share of the shorter wording's pairs found in the other (空调漏水 in
家里空调漏水了), when at least two pairs are shared."""
POSTINGS_CAP = 200
"""Groups remembered per character pair. A pair as common as 坏了 would otherwise
make every new wording compare with every group: quadratic in the inbox's size."""


def group_messages(messages: Iterable[OpenMessage]) -> list[InboxGroup]:
    """Group messages by similar wording; largest groups first, then newest.

    Deterministic and near-linear: messages with the same core wording (the
    :func:`suggested_phrase`, with every number the same: 3栋 and 12栋 say the same
    thing) are one bucket; buckets, commonest first, join the first existing group whose leading
    wording shares enough character pairs with theirs (found through an index of
    pairs, each pair remembering at most :data:`POSTINGS_CAP` groups), else lead a
    new group. Comparing with a group's leader only, not with every member, keeps a
    group from drifting into unrelated wordings one small step at a time."""
    buckets: dict[str, list[OpenMessage]] = defaultdict(list)
    for message in messages:
        key = _DIGITS.sub("0", suggested_phrase(message.normalized)) or message.text
        buckets[key].append(message)
    for bucket in buckets.values():
        bucket.sort(key=lambda m: -m.id)  # newest first, whatever order they came in
    ordered = sorted(buckets.items(), key=lambda kv: (-len(kv[1]), -kv[1][0].id))

    sizes: list[int] = []  # character pairs of each group's leading wording
    groups: list[InboxGroup] = []
    members: list[list[OpenMessage]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for key, bucket in ordered:
        pairs = _pairs(key)
        shared: Counter[int] = Counter()
        for pair in pairs:
            shared.update(postings.get(pair, ()))
        joined = None
        size = len(pairs)
        # One shared pair is enough only between wordings of one or two pairs.
        least = 1 if size <= 2 else 2
        for index in sorted(i for i, common in shared.items() if common >= least):
            common, other = shared[index], sizes[index]
            if common / (size + other - common) >= SIMILAR or (
                common >= 2 and common / min(size, other) >= CONTAINED
            ):
                joined = index
                break
        if joined is None:
            joined = len(groups)
            sizes.append(size)
            groups.append(InboxGroup(phrase=suggested_phrase(bucket[0].normalized)))
            members.append([])
            for pair in pairs:
                if len(postings[pair]) < POSTINGS_CAP:
                    postings[pair].append(joined)
        members[joined].extend(bucket)

    for group, found in zip(groups, members, strict=True):
        found.sort(key=lambda m: -m.id)
        group.count = len(found)
        group.message_ids = [m.id for m in found]
        group.newest = max(m.created_at for m in found)
        group.reasons = Counter(m.reason for m in found)
        seen: set[str] = set()
        for m in found:
            shown = m.text[:EXAMPLE_LENGTH] + ("…" if len(m.text) > EXAMPLE_LENGTH else "")
            if shown not in seen and len(group.examples) < 3:
                seen.add(shown)
                group.examples.append(shown)
        scores: dict[str, float] = defaultdict(float)
        for m in found:
            for c in m.candidates:
                scores[str(c.get("item"))] += float(c.get("score") or 0.0) or 0.01
        group.closest = [item for item, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]
        group.closest = group.closest[:3]
    order = sorted(
        range(len(groups)), key=lambda i: (-groups[i].count, -max(groups[i].message_ids))
    )
    return [groups[i] for i in order]


_DIGITS = re.compile(r"[0-9]+")


def _pairs(text: str) -> frozenset[str]:
    """The text's adjacent character pairs (the text itself when it is one character)."""
    if len(text) < 2:
        return frozenset((text,))
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


FILLER_START = ("请问", "你好", "您好", "麻烦", "我想", "我要", "想问", "帮我", "请")
FILLER_END = ("怎么办", "怎么弄", "谢谢", "了吗", "吗", "呢", "啊", "呀", "吧", "了")


def suggested_phrase(normalized: str) -> str:
    """What to teach from a message: its longest run of words without punctuation,
    without greetings before and particles after (staff edit it before deciding)."""
    chunks = normalized.split() or [normalized]
    phrase = max(chunks, key=len)[:GROUP_CHARACTERS]
    changed = True
    while changed:
        changed = False
        for start in FILLER_START:
            if phrase.startswith(start) and len(phrase) - len(start) >= 2:
                phrase, changed = phrase[len(start) :], True
        for end in FILLER_END:
            if phrase.endswith(end) and len(phrase) - len(end) >= 2:
                phrase, changed = phrase[: -len(end)], True
    return phrase
