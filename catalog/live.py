"""The catalog the running service uses, with its matcher, swappable without a restart."""

from __future__ import annotations

import asyncio

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
        matcher = await asyncio.to_thread(Matcher, catalog, thresholds=thresholds)
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
        matcher = await asyncio.to_thread(Matcher, catalog, thresholds=self._thresholds)
        self._state = (catalog, matcher)
        return True
