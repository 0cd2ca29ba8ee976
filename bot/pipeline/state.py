"""Conversation state per resident: where they are in a multi-turn exchange.

Modelled on aiogram's FSM storage: an abstract async storage keyed per resident, and
a :class:`Conversation` the handlers read and change. The webhook takes the
resident's lock *before* the state is read and saves it before the lock is let go,
so two messages of one resident never see the same state.

The database storage reads the states of concurrent messages in one query (group
commit, see ``bot.pipeline.batching``) and writes only states a handler changed.
"""

from __future__ import annotations

import abc
import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from bot.clock import Clock, SystemClock
from bot.pipeline.batching import Batcher
from storage.batch import BatchDatabase
from storage.repositories import states as repo

StateKey = tuple[str, str]
"""(community id, openid)"""
Step = Callable[[Connection], None]
"""A write to run inside another transaction."""


@dataclass
class Conversation:
    """One resident's state as a handler sees it; changes are saved after the handler."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    expired: bool = False
    """A state existed but timed out before this message: the handler may say so."""
    expired_state: str | None = None
    """Which state timed out (a booking half made is worth a word; a menu is not)."""
    version: int | None = None
    """The stored state's version when it was read (None: nothing stored): the save is
    conditional on it."""
    changed: bool = False

    def set(self, state: str | None, **data: Any) -> None:
        """Move to ``state``, replacing the data."""
        self.state, self.data, self.changed = state, dict(data), True

    def update(self, **data: Any) -> None:
        self.data.update(data)
        self.changed = True

    def clear(self) -> None:
        self.set(None)

    def snapshot(self) -> tuple[str | None, dict[str, Any], bool]:
        """What :meth:`restore` puts back (a handler that failed changes nothing)."""
        return self.state, copy.deepcopy(self.data), self.changed

    def restore(self, snapshot: tuple[str | None, dict[str, Any], bool]) -> None:
        self.state, self.data, self.changed = snapshot[0], copy.deepcopy(snapshot[1]), snapshot[2]


class StateStorage(abc.ABC):
    @abc.abstractmethod
    async def load(self, key: StateKey) -> Conversation: ...

    @abc.abstractmethod
    async def save(self, key: StateKey, conversation: Conversation) -> None: ...

    async def save_step(self, key: StateKey, conversation: Conversation) -> Step | None:
        """The save as a step of another transaction (the ledger's record of the
        reply), so both are kept or neither; a storage outside the database saves
        now and returns None."""
        await self.save(key, conversation)
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Finish pending work at shutdown."""


class MemoryStateStorage(StateStorage):
    """For a single process that may forget on restart (tests, experiments)."""

    def __init__(self, timeout: dt.timedelta, clock: Clock | None = None) -> None:
        self._timeout = timeout
        self._clock: Clock = clock or SystemClock()
        self._states: dict[StateKey, tuple[str | None, dict[str, Any], dt.datetime]] = {}

    async def load(self, key: StateKey) -> Conversation:
        found = self._states.get(key)
        if found is None:
            return Conversation()
        state, data, expires = found
        if expires < self._clock.now():
            return Conversation(expired=state is not None, expired_state=state)
        return Conversation(state, dict(data))

    async def save(self, key: StateKey, conversation: Conversation) -> None:
        if conversation.changed:
            data = dict(conversation.data)
            self._states[key] = (conversation.state, data, self._clock.now() + self._timeout)


class DatabaseStateStorage(StateStorage):
    """States in the database: they survive restarts and are shared by processes."""

    def __init__(
        self, db: BatchDatabase, timeout: dt.timedelta, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._reads: Batcher[StateKey, repo.StateRow | None] = Batcher(self._load_batch)

    async def load(self, key: StateKey) -> Conversation:
        row = await self._reads.submit(key)
        if row is None:
            return Conversation()
        state, data, expires, version = row
        if state is not None and expires is not None and expires < self._clock.now():
            return Conversation(expired=True, expired_state=state, version=version)
        return Conversation(state, dict(data), version=version)

    async def save(self, key: StateKey, conversation: Conversation) -> None:
        if not conversation.changed:
            return
        step = await self.save_step(key, conversation)
        if step is not None:
            await self._db.run(step)

    async def save_step(self, key: StateKey, conversation: Conversation) -> Step | None:
        if not conversation.changed:
            return None
        state, data = conversation.state, dict(conversation.data)
        expires = self._clock.now() + self._timeout if state is not None else None
        version = conversation.version
        return lambda c: repo.save(c, *key, state, data, expires, version)

    async def close(self) -> None:
        await self._reads.close()

    async def _load_batch(self, keys: list[StateKey]) -> list[repo.StateRow | None]:
        found = await self._db.run(lambda c: repo.load_many(c, keys), write=False)
        return [found.get(key) for key in keys]
