"""The catalog the running service uses, with its matcher, swappable without a restart."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from catalog.learned import NOTHING_LEARNED, Learning, with_learned
from catalog.matcher import Matcher
from catalog.model import Catalog
from catalog.thresholds import Thresholds


class LiveCatalog:
    """The current catalog and the matcher built for it, always replaced together.

    Readers take ``current`` / ``matcher`` once per request. A replacement builds the
    new matcher in a worker thread (jieba segmentation is CPU work) and then swaps a
    single reference, so a request in flight keeps the version it started with and
    the next one sees the new one.

    ``current`` is the imported catalog (``base``) with what staff taught in the
    learning inbox (``learning``) folded in (``catalog/learned.py``): a new import
    keeps the decisions, and new decisions keep the import. Either is replaced on
    its own; a lock makes two replacements at once (a console import while the poll
    installs decisions) build one after the other, so neither loses the other's part.
    """

    def __init__(
        self,
        catalog: Catalog,
        matcher: Matcher,
        thresholds: Thresholds | None = None,
        *,
        learning: Learning = NOTHING_LEARNED,
    ) -> None:
        """``catalog`` is the imported catalog, ``matcher`` the one built for it with
        ``learning`` applied."""
        current = with_learned(catalog, learning)
        if matcher.version != current.version:
            raise ValueError("matcher was built for another catalog version")
        self._state = (catalog, learning, current, matcher)
        self._thresholds = thresholds
        self._lock = asyncio.Lock()

    @classmethod
    async def load(
        cls,
        catalog: Catalog,
        thresholds: Thresholds | None = None,
        learning: Learning = NOTHING_LEARNED,
    ) -> LiveCatalog:
        current = await asyncio.to_thread(with_learned, catalog, learning)
        matcher = await asyncio.to_thread(matcher_for, current, thresholds)
        return cls(catalog, matcher, thresholds, learning=learning)

    @property
    def current(self) -> Catalog:
        """The catalog the service runs on: the imported one with the decisions."""
        return self._state[2]

    @property
    def matcher(self) -> Matcher:
        return self._state[3]

    @property
    def base(self) -> Catalog:
        """The catalog as imported, without the learning inbox's decisions."""
        return self._state[0]

    @property
    def learning(self) -> Learning:
        return self._state[1]

    async def replace(self, catalog: Catalog) -> bool:
        """Install a newly imported catalog version, keeping the decisions; return
        False when it is the version in use."""
        return await self.update(catalog=catalog)

    async def relearn(self, learning: Learning) -> bool:
        """Install a new set of decisions; False when it is the revision in use."""
        return await self.update(learning=learning)

    async def update(
        self, *, catalog: Catalog | None = None, learning: Learning | None = None
    ) -> bool:
        """Install a new imported catalog, new decisions or both; False when neither
        differs from what is in use."""
        async with self._lock:
            base, known, current, matcher = self._state
            if catalog is not None and catalog.version != base.version:
                base = catalog
            if learning is not None and learning.revision != known.revision:
                known = learning
            if base is self._state[0] and known is self._state[1]:
                return False
            effective = await asyncio.to_thread(with_learned, base, known)
            if effective.version != current.version:
                matcher = await asyncio.to_thread(matcher_for, effective, self._thresholds)
                current = effective
            self._state = (base, known, current, matcher)
            return True


_MATCHERS: OrderedDict[tuple[str, Thresholds | None], Matcher] = OrderedDict()
_MATCHERS_LOCK = threading.Lock()
MATCHER_CACHE_SIZE = 16


def matcher_for(catalog: Catalog, thresholds: Thresholds | None = None) -> Matcher:
    """The matcher of this catalog version, built once per process (blocking).

    A version is a hash of the catalog's content, and a matcher is immutable, so one
    built for a version serves every catalog object with that version: a process
    reloading a catalog it had before, several communities sharing one catalog, the
    many services a test run starts. The least recently used beyond 16 are dropped.
    """
    key = (catalog.version, thresholds)
    with _MATCHERS_LOCK:
        found = _MATCHERS.get(key)
        if found is not None:
            _MATCHERS.move_to_end(key)
            return found
    matcher = Matcher(catalog, thresholds=thresholds)  # outside the lock: ~0.1-1 s
    with _MATCHERS_LOCK:
        _MATCHERS[key] = matcher
        while len(_MATCHERS) > MATCHER_CACHE_SIZE:
            _MATCHERS.popitem(last=False)
    return matcher
