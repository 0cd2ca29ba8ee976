"""A loaded catalog with the look-ups the rest of the service needs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from catalog.schema import CatalogDocument, Item, Unit


@dataclass(frozen=True)
class Catalog:
    """An immutable, validated catalog.

    ``version`` is a content hash of the canonical document, so the same catalog
    written with different whitespace, key order or comments has the same version:
    indexes built from it (the matcher's) are rebuilt only when something changed.
    """

    document: CatalogDocument
    source: str = "<memory>"
    _units: dict[str, Unit] = field(init=False, repr=False, compare=False)
    _items: dict[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_units", {u.id: u for u in self.document.units})
        object.__setattr__(self, "_items", {i.id: i for i in self.document.items})

    @cached_property
    def version(self) -> str:
        canonical = self.document.model_dump_json(exclude_defaults=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def community_id(self) -> str:
        return self.document.community.id

    @property
    def community_name(self) -> str:
        return self.document.community.name

    @property
    def units(self) -> list[Unit]:
        return list(self.document.units)

    @property
    def items(self) -> list[Item]:
        return list(self.document.items)

    def unit(self, unit_id: str) -> Unit:
        return self._units[unit_id]

    def find_unit(self, unit_id: str) -> Unit | None:
        """The unit, or None if it is not (or no longer) in the catalog."""
        return self._units.get(unit_id)

    def item(self, item_id: str) -> Item:
        return self._items[item_id]

    def has_item(self, item_id: str) -> bool:
        return item_id in self._items

    @cached_property
    def categories(self) -> list[str]:
        """Categories in catalog order (the order staff wrote them in is the menu order)."""
        return list(dict.fromkeys(i.category for i in self.document.items))

    def items_in(self, category: str) -> list[Item]:
        return [i for i in self.document.items if i.category == category]

    def items_of_unit(self, unit_id: str) -> list[Item]:
        return [i for i in self.document.items if i.unit == unit_id]

    def public_items(self) -> Iterable[Item]:
        """Items that may be shown to anyone (confidential ones are not)."""
        return (i for i in self.document.items if not i.confidential)

    def to_json(self) -> str:
        return self.document.model_dump_json()

    @classmethod
    def from_json(cls, text: str, source: str = "<database>") -> Catalog:
        return cls(CatalogDocument.model_validate_json(text), source=source)
