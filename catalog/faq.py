"""Answers to residents' questions about the community (the catalog's ``faq:``).

Residents ask the service more than they order from it: 社区几点上班, 开居住证明要带
什么, 电梯坏了找谁. A catalog answers such questions with short FAQ entries; this
module finds the entry that answers a message, with the matcher's own machinery: each
entry becomes an :class:`~catalog.matcher.Entry` (its questions are strong phrases
and examples, its answer counts like an item's description, its unit's name a little)
and a :class:`~catalog.matcher.TermIndex` scores the message against all of them.

A wrong answer is worse than none: a resident told the wrong office hours walks
there for nothing, where "I'll ask the staff" costs a short wait. So an entry is
given only when the evidence is strong and clearly points at it (see
:class:`FaqThresholds`); otherwise :meth:`FaqIndex.match` returns None and the
caller hands the question on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalog.lexicon import Lexicon, shipped_lexicon
from catalog.matcher import WINDOW, Entry, TermIndex, Weights, place_names
from catalog.model import Catalog
from catalog.normalize import normalize
from catalog.schema import Faq


@dataclass(frozen=True)
class FaqThresholds:
    """When an entry is the answer. Chosen on hand-written questions and non-questions
    for the demo catalog (see ``tests/test_faq.py`` for what they must keep doing)."""

    answer: float = 0.6
    """Minimum confidence (0–1) to give an entry's answer."""
    lead: float = 0.6
    """The runner-up's raw score must be below this share of the top: two entries
    that both fit (低保 and 高龄津贴 for 补贴怎么申请) mean the question is not clear."""
    half: float = 3.0
    """The raw score at which confidence is 0.5 (the saturation curve's midpoint)."""


@dataclass(frozen=True)
class FaqMatch:
    faq: Faq
    """The catalog's entry: its ``answer`` is what the resident is told."""
    score: float
    """Confidence (0–1) that this entry answers the message."""
    terms: tuple[str, ...] = ()
    """The entry's terms found in the message (for explanations and logs)."""


class FaqIndex:
    """An immutable index of one catalog version's FAQ entries; safe from any thread.

    Built with the catalog's matcher (a few ms for a few dozen entries). A catalog
    without ``faq:`` gives an index that answers nothing.
    """

    def __init__(
        self,
        catalog: Catalog,
        lexicon: Lexicon | None = None,
        *,
        weights: Weights | None = None,
        thresholds: FaqThresholds | None = None,
    ) -> None:
        """``lexicon`` is the one the catalog's matcher uses (the catalog's own words
        included); by default the shipped lexicon extended with them."""
        self.weights = weights or Weights()
        self.thresholds = thresholds or FaqThresholds()
        if lexicon is None:
            lexicon = shipped_lexicon().extended(catalog.document.lexicon)
        self.entries: list[Faq] = list(catalog.document.faq)
        self._index = (
            TermIndex(
                faq_entries(catalog, self.weights), lexicon, self.weights, place_names(catalog)
            )
            if self.entries
            else None
        )

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, text: str, limit: int = 3) -> tuple[FaqMatch, ...]:
        """The best-scoring entries, best first, whether or not one is the answer:
        for staff tools and logs, never to answer a resident with."""
        if self._index is None:
            return ()
        scores, terms = self._index.raw_scores(normalize(text[:WINDOW]))
        order = np.argsort(-scores, kind="stable")[:limit]
        return tuple(
            FaqMatch(self.entries[i], self._confidence(float(scores[i])), terms)
            for i in order
            if scores[i] > 0
        )

    def match(self, text: str) -> FaqMatch | None:
        """The entry that answers this message, or None when none confidently does.

        An entry is the answer when its confidence reaches ``thresholds.answer``, the
        runner-up scores below ``thresholds.lead`` of it, and at least one whole term
        of the entry is in the message (shared characters alone never answer).
        """
        best = self.candidates(text, limit=2)
        if not best or not best[0].terms:
            return None
        t = self.thresholds
        top = best[0]
        if top.score < t.answer:
            return None
        if len(best) > 1 and self._raw(best[1].score) >= t.lead * self._raw(top.score):
            return None
        return top

    def _confidence(self, raw: float) -> float:
        return raw / (raw + self.thresholds.half)

    def _raw(self, confidence: float) -> float:
        return confidence * self.thresholds.half / (1.0 - confidence)


def faq_entries(catalog: Catalog, weights: Weights) -> list[Entry]:
    """The catalog's FAQ as index entries.

    Questions are how residents ask, so they count as strongly as an item's keywords,
    and their words as an item's examples; the answer's words count like an item's
    description (a resident may ask with the answer's words: 居住证明 要带 户口本);
    the owning unit's name counts like an item's unit.
    """
    w = weights
    entries = []
    for faq in catalog.document.faq:
        phrases = [(q, w.keyword) for q in faq.questions]
        if faq.unit is not None:
            phrases.append((catalog.unit(faq.unit).name, w.unit))
        sentences = [(q, w.example) for q in faq.questions] + [(faq.answer, w.description)]
        entries.append(Entry(faq.id, tuple(phrases), tuple(sentences)))
    return entries
