"""The communities a running service serves, each with everything that is its own.

A community's catalog, official account (token, codec, API client) and message
pipeline are built once at start-up and looked up by id: from the webhook path
(``/wechat/<id>``), from a signed-in user's community, or from a database row's
``community_id`` in the background workers. Nothing here is shared between two
communities except the database and the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.communities import CommunitySpec
from bot.pipeline.webhook import Webhook
from bot.wechat.customer_service import CustomerService, DevOutbox
from bot.wechat.inbound import Codec
from catalog.live import LiveCatalog
from storage.repositories.catalog import live_catalog, newest_versions
from storage.repositories.inbox import learned_revisions, learning_of

log = logging.getLogger(__name__)
T = TypeVar("T", bound="_Identified")


class UnknownCommunity(LookupError):
    """No community of that id is served here."""


@dataclass(frozen=True)
class WeChatCredentials:
    token: str
    token_generated: bool
    """True when no token was configured and a development token is in use."""


@dataclass(frozen=True)
class Account:
    """What a background worker needs to act for one community."""

    id: str
    catalog: LiveCatalog
    customer_service: CustomerService
    """The WeChat API client of the community's account, or a DevOutbox without one."""
    resident_template: str | None = None
    """Template for messages to residents outside WeChat's 48-hour window."""


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


class ByCommunity(Generic[T]):
    """Things by community id, in the order configured; the first is the default
    community's. An unknown id is :class:`UnknownCommunity`."""

    def __init__(self, things: list[T]) -> None:
        if not things:
            raise ValueError("at least one community")
        self._by_id = {thing.id: thing for thing in things}
        self.default = things[0]

    def __getitem__(self, community_id: str) -> T:
        try:
            return self._by_id[community_id]
        except KeyError:
            raise UnknownCommunity(community_id) from None

    def get(self, community_id: str | None) -> T | None:
        return self._by_id.get(community_id) if community_id is not None else None

    def __iter__(self) -> Iterator[T]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def several(self) -> bool:
        return len(self._by_id) > 1


Accounts = ByCommunity[Account]


@dataclass(frozen=True)
class Tenant:
    """One community as the running service sees it."""

    spec: CommunitySpec
    account: Account
    credentials: WeChatCredentials
    codec: Codec
    webhook: Webhook

    @property
    def id(self) -> str:
        return self.account.id

    @property
    def catalog(self) -> LiveCatalog:
        return self.account.catalog

    @property
    def customer_service(self) -> CustomerService:
        return self.account.customer_service

    @property
    def name(self) -> str:
        return self.catalog.current.community_name

    def dev_tools_open(self, mode: str) -> bool:
        """May the simulator and /dev/outbox serve this community? They act as any
        resident with the account's token: only for the demo (a generated token, no
        API account) unless DEV_TOOLS says otherwise."""
        if mode == "off" or not isinstance(self.customer_service, DevOutbox):
            return False
        return mode == "on" or self.credentials.token_generated


async def refresh_catalogs(
    sessionmaker: async_sessionmaker[AsyncSession], accounts: Accounts
) -> list[str]:
    """Install catalogs imported since by another process (the console of another
    worker), and decisions taken since in the learning inbox of any process; the
    communities whose catalog changed. Two cheap queries when nothing changed."""
    async with sessionmaker() as session:
        newest = await newest_versions(session)
        revisions = await learned_revisions(session)
        updates = []
        for a in accounts:
            base, learning = a.catalog.base, a.catalog.learning
            stale = newest.get(a.id, base.version) != base.version
            unlearned = revisions.get(a.id, learning.revision) != learning.revision
            if stale or unlearned:
                updates.append(
                    (
                        a,
                        await live_catalog(session, a.id) if stale else None,
                        await learning_of(session, a.id) if unlearned else None,
                    )
                )
    changed = []
    for account, catalog, learned in updates:
        if await account.catalog.update(catalog=catalog, learning=learned):
            log.info("catalog of %s: now version %s", account.id, account.catalog.current.version)
            changed.append(account.id)
    return changed


class Tenants(ByCommunity[Tenant]):
    """Every community served, by id; the first one is the default."""

    def __init__(self, tenants: list[Tenant]) -> None:
        super().__init__(tenants)
        self.accounts: Accounts = ByCommunity([t.account for t in tenants])
