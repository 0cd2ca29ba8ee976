"""The catalog the running service uses, with its matcher, swappable without a restart."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

from catalog.matcher import Matcher
from catalog.model import Catalog
from catalog.thresholds import Thresholds


class LiveCatalog:
    """The current catalog and the matcher built for it, always replaced together.

    Readers take ``current`` / ``matcher`` once per request. A replacement builds the
    new matcher in a worker thread (jieba segmentation is CPU work) and then swaps a
    single reference, so a request in flight keeps the version it started with and
    the next one sees the new one.
    """

    def __init__(
        self, catalog: Catalog, matcher: Matcher, thresholds: Thresholds | None = None
    ) -> None:
        if matcher.version != catalog.version:
            raise ValueError("matcher was built for another catalog version")
        self._state = (catalog, matcher)
        self._thresholds = thresholds

    @classmethod
    async def load(cls, catalog: Catalog, thresholds: Thresholds | None = None) -> LiveCatalog:
        matcher = await asyncio.to_thread(matcher_for, catalog, thresholds)
        return cls(catalog, matcher, thresholds)

    @property
    def current(self) -> Catalog:
        return self._state[0]

    @property
    def matcher(self) -> Matcher:
        return self._state[1]

    async def replace(self, catalog: Catalog) -> bool:
        """Install a new catalog version; return False when it is the version in use."""
        if catalog.version == self.current.version:
            return False
        matcher = await asyncio.to_thread(matcher_for, catalog, self._thresholds)
        self._state = (catalog, matcher)
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
