"""jieba tokenizers: one per catalog, sharing one base dictionary.

A catalog's titles, keywords and lexicon words are added to the tokenizer as user
words, so 社保卡 or 妈妈夜校 come out as one token. Each catalog gets its own
``jieba.Tokenizer`` so that two catalogs (two communities, or the old and new
version during a reload) never see each other's words. Loading jieba's dictionary
costs ~0.7 s and ~60 MB, so it happens once per process and is shared: a catalog's
tokenizer starts from a copy of the base word-frequency table (a dict copy of
pointers, ~10 ms) rather than from the file.
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


def catalog_tokenizer(words: Iterable[str]) -> jieba.Tokenizer:
    """A tokenizer that knows ``words`` on top of jieba's dictionary."""
    base = base_tokenizer()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(base.FREQ)
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
