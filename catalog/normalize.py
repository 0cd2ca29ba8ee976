"""Bring a resident's message to one canonical form before matching.

Residents write traditional or simplified characters, full-width digits from a
Chinese keyboard, emoji, and punctuation or none at all (voice input). The matcher
sees only simplified, half-width, lower-case text with punctuation and emoji turned
into spaces, so the same need written two ways matches the same way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")

# Anything that is not a letter, digit or CJK ideograph separates words: punctuation
# (ASCII and CJK), emoji, symbols, variation selectors and zero-width joiners.
_SEPARATORS = re.compile(r"[^0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def normalize(text: str) -> str:
    """Simplified Chinese, half-width, lower-case; non-words become single spaces."""
    text = unicodedata.normalize("NFKC", text)  # full-width → half-width, ① → 1
    text = _T2S.convert(text)
    text = text.lower()
    return _SEPARATORS.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def normalize_term(term: str) -> str:
    """Normalise a catalog or lexicon term the same way, without its spaces."""
    return normalize(term).replace(" ", "")
