"""The domain lexicon: everyday words residents use, linked to the words catalogs use.

Residents say 楼上滴水 where the catalog says 漏水, 走不动 where it says 行动不便. The
lexicon shipped with order-menu (``catalog/lexicon/community.yaml``) maps canonical
catalog terms to such everyday variants; a catalog may extend it with its own
``lexicon:`` section. It also lists phrases that signal a request outside any
community's catalog (宠物医院, 外卖 …), which lowers the matcher's confidence.

The lexicon is knowledge about how people talk, written by hand; it is never
learned from evaluation messages.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from catalog.normalize import normalize_term


@dataclass(frozen=True)
class Lexicon:
    concepts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Canonical term → everyday variants (all normalised)."""
    out_of_scope: frozenset[str] = frozenset()

    def extended(self, extra: Mapping[str, Iterable[str]]) -> Lexicon:
        """This lexicon plus a catalog's own entries (variants are added, not replaced)."""
        merged: dict[str, tuple[str, ...]] = dict(self.concepts)
        for canonical, variants in extra.items():
            key = normalize_term(canonical)
            if not key:
                continue
            added = tuple(v for v in (normalize_term(v) for v in variants) if v and v != key)
            merged[key] = tuple(dict.fromkeys((*merged.get(key, ()), *added)))
        return Lexicon(concepts=merged, out_of_scope=self.out_of_scope)


def parse_lexicon(data: Mapping[str, object]) -> Lexicon:
    concepts: dict[str, tuple[str, ...]] = {}
    raw_concepts = data.get("concepts") or {}
    if not isinstance(raw_concepts, Mapping):
        raise ValueError("lexicon: 'concepts' must be a mapping")
    for canonical, variants in raw_concepts.items():
        key = normalize_term(str(canonical))
        values = [normalize_term(str(v)) for v in variants or []]
        concepts[key] = tuple(dict.fromkeys(v for v in values if v and v != key))
    raw_oos = data.get("out_of_scope") or []
    if not isinstance(raw_oos, list):
        raise ValueError("lexicon: 'out_of_scope' must be a list")
    out_of_scope = frozenset(t for t in (normalize_term(str(v)) for v in raw_oos) if t)
    return Lexicon(concepts=concepts, out_of_scope=out_of_scope)


@lru_cache(maxsize=1)
def shipped_lexicon() -> Lexicon:
    """The lexicon that ships with order-menu (read once per process)."""
    resource = importlib.resources.files("catalog") / "lexicon" / "community.yaml"
    data = yaml.safe_load(resource.read_text(encoding="utf-8")) or {}
    return parse_lexicon(data)
