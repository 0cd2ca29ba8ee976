"""The catalog the running service uses, swappable without a restart."""

from __future__ import annotations

from catalog.model import Catalog


class LiveCatalog:
    """Holds the current catalog; readers take ``current`` once per request.

    Replacing it is a single reference assignment, so a request in flight keeps the
    catalog it started with and the next one sees the new one.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._current = catalog

    @property
    def current(self) -> Catalog:
        return self._current

    def replace(self, catalog: Catalog) -> bool:
        """Install a new catalog; return False when it is the same version."""
        if catalog.version == self._current.version:
            return False
        self._current = catalog
        return True
