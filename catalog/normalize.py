"""Bring a resident's message to one canonical form: every text normalisation is here.

Residents write traditional or simplified characters, full-width digits from a
Chinese keyboard, emoji, and punctuation or none at all (voice input). Each reader
needs some of that undone, and the same way everywhere:

- :func:`normalize` / :func:`normalize_term`: what the matcher, the FAQ and learned
  phrases see: simplified, half-width, lower-case text with punctuation and emoji
  turned into spaces (or, for a term, removed), so the same need written two ways
  matches the same way.
- :func:`simplified` and :func:`plain`: what the act patterns (``catalog.acts``) read:
  the characters folded, but punctuation and emoji kept (a "？" or a 👍 tells them
  something).
- :func:`trimmed` and :func:`compact`: what the answer parsers (``catalog.answers``)
  read: half-width and lower case, without the punctuation around an answer.
  Not converted to simplified: an answer's words are matched as the resident wrote them.
- :func:`half_width` and :func:`words_only`: the two steps the others are made of.
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
_NOT_WORDS = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")
_EXTRA_EDGE = frozenset("~^`|")


def half_width(text: str) -> str:
    """NFKC: full-width letters, digits and punctuation → half-width, ① → 1."""
    return unicodedata.normalize("NFKC", text)


def simplified(text: str) -> str:
    """Half-width, and traditional characters → simplified."""
    converted: str = _T2S.convert(half_width(text))
    return converted


def plain(text: str) -> str:
    """Simplified, half-width, lower case, without surrounding spaces; punctuation and
    emoji kept."""
    return simplified(text).lower().strip()


def normalize(text: str) -> str:
    """Simplified Chinese, half-width, lower-case; non-words become single spaces."""
    return _SEPARATORS.sub(" ", simplified(text).lower()).strip()


@lru_cache(maxsize=4096)
def normalize_term(term: str) -> str:
    """Normalise a catalog or lexicon term the same way, without its spaces."""
    return normalize(term).replace(" ", "")


def words_only(text: str) -> str:
    """Letters, digits and ideographs alone: punctuation, emoji and spaces removed."""
    return _NOT_WORDS.sub("", text)


def _is_edge_noise(char: str) -> bool:
    """Punctuation, spaces and the like that may surround an answer."""
    return char.isspace() or char in _EXTRA_EDGE or unicodedata.category(char)[0] in "PZ"


def trimmed(text: str) -> str:
    """Half-width, lower case, no surrounding punctuation or spaces (traditional
    characters kept)."""
    s = half_width(text).lower()
    start, end = 0, len(s)
    while start < end and _is_edge_noise(s[start]):
        start += 1
    while end > start and _is_edge_noise(s[end - 1]):
        end -= 1
    return s[start:end]


def compact(text: str) -> str:
    """:func:`trimmed`, and without the spaces inside either ("第 2 个" → "第2个")."""
    return _SPACES.sub("", trimmed(text))
