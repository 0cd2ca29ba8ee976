"""jieba tokenizers: one per catalog, sharing one base dictionary.

A catalog's titles, keywords and lexicon words are added to the tokenizer as user
words, so 社保卡 or 妈妈夜校 come out as one token. Each catalog gets its own
``jieba.Tokenizer`` so that two catalogs (two communities, or the old and new
version during a reload) never see each other's words. Loading jieba's dictionary
costs ~0.7 s and ~60 MB, so it happens once per process and is shared: a catalog's
tokenizer reads the base word-frequency table through a small overlay holding only
its own words. A copy of the table would cost ~25 MB per catalog, which a deployment
serving many communities, or reloading a catalog, cannot afford.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import jieba

jieba.setLogLevel(logging.WARNING)

_base: jieba.Tokenizer | None = None
_base_lock = threading.Lock()


def base_tokenizer() -> jieba.Tokenizer:
    """The process-wide tokenizer with jieba's own dictionary (loaded on first use).

    Blocking (~0.7 s the first time): call it from a thread, never on the event loop.
    """
    global _base
    with _base_lock:
        if _base is None:
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _base = tokenizer
        return _base


class OverlayFrequencies(dict[str, int]):
    """A word-frequency table: own entries first, then a shared base table.

    jieba reads its table with ``in``, ``[]`` and ``.get`` and writes it only in
    ``add_word``, so these four are all an overlay needs.
    """

    def __init__(self, base: dict[str, int]) -> None:
        super().__init__()
        self.base = base

    def __missing__(self, word: str) -> int:
        return self.base[word]

    def __contains__(self, word: object) -> bool:
        return dict.__contains__(self, word) or word in self.base

    def get(self, word: str, default: int | None = None) -> int | None:  # type: ignore[override]
        value = dict.get(self, word)
        return self.base.get(word, default) if value is None else value


def catalog_tokenizer(words: Iterable[str]) -> jieba.Tokenizer:
    """A tokenizer that knows ``words`` on top of jieba's dictionary."""
    base = base_tokenizer()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = OverlayFrequencies(base.FREQ)
    tokenizer.total = base.total
    tokenizer.initialized = True
    for word in words:
        if len(word) >= 2:
            # A high frequency makes jieba keep the word whole rather than split it.
            tokenizer.add_word(word, freq=max(tokenizer.FREQ.get(word, 0), 2000))
    return tokenizer


def is_common_word(word: str) -> bool:
    """A word jieba's general dictionary knows well (it is no typing slip)."""
    return int(base_tokenizer().FREQ.get(word, 0) or 0) >= COMMON_WORD_FREQ


COMMON_WORD_FREQ = 100


def search_tokens(
    tokenizer: jieba.Tokenizer, text: str, *, hmm: bool = True
) -> list[tuple[str, int, int]]:
    """Search-mode tokens with spans: a long word and also the words inside it.

    ``hmm=False`` skips jieba's guessing of unknown words: twice as fast, and enough
    where only the boundaries of known words matter.
    """
    return list(tokenizer.tokenize(text, mode="search", HMM=hmm))
