"""Map a resident's message to the catalog item they want, or to nothing.

How it works, and why:

1. **Index (once per catalog version).** Every item becomes a weighted bag of
   terms. Whole titles, keywords and synonyms are strong terms; the words inside
   them (jieba search-mode segmentation, so 社保卡上门代办 also yields 社保卡 and
   上门) count a little less; words of the examples, description and category less
   again. Each term then gets the everyday words the domain lexicon links to it
   (滴水 → 漏水), slightly discounted. Terms shared by many items get a low IDF.

2. **Read the message.** Normalise it (simplified, half-width, no emoji), find
   every known term with one Aho-Corasick pass, and keep hits only where jieba
   sees words begin and end (so 电工 does not match inside 停电工作).
   Where a longer term covers a shorter one, the longer wins. Homophones of terms
   (社宝卡 → 社保卡) are found on the pinyin of the message.

3. **Score and decide.** An item's score is the sum over the message's terms of
   term weight × IDF. Words that signal a request no community serves (宠物医院,
   外卖) scale every score down. The top score, through a saturating curve, is the
   confidence; the decision is ``matched`` when it is high and clearly ahead of the
   runner-up, ``ambiguous`` (2–3 choices) when it is plausible but not decisive, and
   ``none`` otherwise.

The index itself (:class:`TermIndex`) knows nothing of items: it is built from
generic :class:`Entry` records (an id, weighted phrases, weighted sentences). Items
are turned into entries by :func:`item_entries`; the answers to residents' questions
(``faq:``) are another set of entries with their own index (``catalog/faq.py``), so
both are read with the same machinery.

Nothing here is trained on evaluation messages: the index comes from the catalog and
the shipped lexicon only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import ahocorasick
import numpy as np
import numpy.typing as npt

from catalog.lexicon import Lexicon, shipped_lexicon
from catalog.model import Catalog
from catalog.normalize import normalize, normalize_term
from catalog.pinyin import is_han, sound_key, sound_text
from catalog.postings import PostingsBuilder
from catalog.schema import Item
from catalog.segment import catalog_tokenizer, is_common_word, search_tokens
from catalog.thresholds import Thresholds

if TYPE_CHECKING:
    import jieba

    from catalog.faq import FaqIndex, FaqMatch

Decision = Literal["matched", "ambiguous", "none"]


@dataclass(frozen=True)
class Weights:
    """How much each source of a term counts. Defaults were tuned on the dev set."""

    title: float = 3.0
    keyword: float = 3.0
    synonym: float = 2.6
    example: float = 1.2
    description: float = 1.0
    category: float = 1.0
    unit: float = 0.6
    part: float = 0.6
    """A word inside a title/keyword/synonym, relative to the whole phrase."""
    lexicon: float = 0.85
    """An everyday word from the lexicon, relative to the term it stands for."""
    sound_alike: float = 0.8
    """A homophone of a term, relative to the term itself."""
    place: float = 0.25
    """Names of the community's places (its grids and their areas, e.g. 东西巷) say where
    a need is, not which service: terms that are place names count this much."""
    out_of_scope: float = 0.3
    """Factor applied to every score when the message asks for something off-catalog."""
    idf_power: float = 1.0
    """IDF is raised to this power: with a few dozen items plain IDF barely separates a
    word in one item from a word in ten; sharpening it lets specific words lead."""
    characters: float = 0.3
    """Weight of character evidence (single characters and pairs shared with an item's
    texts): a back-off that lets 打针/针, 教/课 count when no whole term matched."""


@dataclass(frozen=True)
class Candidate:
    item: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    text: str
    decision: Decision
    item: str | None
    """The matched item's id when the decision is ``matched``, else None."""
    score: float
    """Confidence (0–1) in the top candidate."""
    candidates: tuple[Candidate, ...]
    """Top three, best first (fewer when fewer items scored at all)."""
    terms: tuple[str, ...] = ()
    """The catalog terms found in the message (for explanations and logs)."""

    def as_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "decision": self.decision,
            "item": self.item,
            "score": round(self.score, 4),
            "candidates": [{"item": c.item, "score": round(c.score, 4)} for c in self.candidates],
        }


WINDOW = 1000
"""Characters of a message the matcher reads. More than the 2,048 bytes WeChat allows
in a text an account sends (about 680 Han characters), so any need a resident states
is read whole; a pasted article or a flood of text costs no more than this (a few
ms), whatever its length."""

_OUT_OF_SCOPE = "\x00oos"  # marks out-of-scope phrases in the term automaton


@dataclass(frozen=True)
class Entry:
    """One thing a message can be matched to, as the index sees it."""

    id: str
    phrases: tuple[tuple[str, float], ...]
    """Whole phrases with their weight (titles, keywords, synonyms …): each is a term,
    and the words inside it count ``Weights.part`` as much."""
    sentences: tuple[tuple[str, float], ...] = ()
    """Free text with its weight (examples, descriptions): each of its words is a term."""


def item_entries(catalog: Catalog, weights: Weights) -> list[Entry]:
    """The catalog's items as index entries, in catalog order."""
    w = weights
    entries = []
    for item in catalog.items:
        unit = catalog.unit(item.unit)
        phrases = [(item.title, w.title)]
        phrases += [(k, w.keyword) for k in item.keywords]
        phrases += [(s, w.synonym) for s in item.synonyms]
        phrases += [(item.category, w.category), (unit.name, w.unit)]
        sentences = [(e, w.example) for e in item.examples] + [(item.description, w.description)]
        entries.append(Entry(item.id, tuple(phrases), tuple(sentences)))
    return entries


class TermIndex:
    """Weighted terms of a list of entries, and the raw score of each entry for a message.

    Immutable once built; ``raw_scores`` is safe from any thread.
    """

    def __init__(
        self,
        entries: list[Entry],
        lexicon: Lexicon,
        weights: Weights,
        places: Iterable[str] = (),
    ) -> None:
        """Build (blocking: segmentation is CPU work). ``places`` are the names of the
        community's places, which count ``Weights.place`` as much as other terms."""
        self.entries = entries
        self.lexicon = lexicon
        self.weights = weights
        self._build(list(places))

    @property
    def tokenizer(self) -> jieba.Tokenizer:
        return self._tokenizer

    def _build(self, place_names: list[str]) -> None:
        w = self.weights
        phrases_per_entry: list[list[tuple[str, float]]] = [
            [(normalize_term(text), weight) for text, weight in entry.phrases if text]
            for entry in self.entries
        ]

        # The tokenizer must know whole phrases and lexicon words before segmenting.
        words = {p for phrases in phrases_per_entry for p, _ in phrases}
        words |= {v for variants in self.lexicon.concepts.values() for v in variants}
        words |= set(self.lexicon.concepts)
        self._tokenizer = catalog_tokenizer(sorted(words))

        term_weights = [
            self._entry_terms(entry, phrases)
            for entry, phrases in zip(self.entries, phrases_per_entry, strict=True)
        ]
        self._link_lexicon(term_weights, phrases_per_entry)

        places = self._place_terms(place_names)
        terms = PostingsBuilder()
        grams = PostingsBuilder()
        variant_grams = {
            concept: _grams_of(variants) for concept, variants in self.lexicon.concepts.items()
        }
        for entry_index, weights in enumerate(term_weights):
            for term, weight in weights.items():
                if term in places:
                    terms.raise_to(term, entry_index, weight * w.place)
                    continue
                terms.raise_to(term, entry_index, weight)
                # Character back-off: the Han characters and pairs of each term and,
                # for a concept, of the everyday words that stand for it.
                for gram in _grams(term):
                    grams.raise_to(gram, entry_index, weight)
                for gram in variant_grams.get(term, ()):
                    grams.raise_to(gram, entry_index, weight * w.lexicon)
        count = len(self.entries)
        self._terms = terms.build(count, w.idf_power)
        # Grams shared by a quarter of the entries or more say little, and would make
        # scoring slow on big catalogs.
        self._grams = grams.build(count, w.idf_power, max_share=0.25)

        # Everyday words stand for the concepts they are listed under.
        aliases: dict[str, dict[str, float]] = {}
        for concept, variants in self.lexicon.concepts.items():
            if concept not in self._terms:
                continue
            for variant in variants:
                aliases.setdefault(variant, {})[concept] = w.lexicon
        self._aliases = aliases

        automaton = ahocorasick.Automaton()
        for term in set(self._terms) | set(aliases):
            if len(term) >= 2:
                automaton.add_word(term, term)
        for phrase in self.lexicon.out_of_scope:
            if phrase not in self._terms:
                automaton.add_word(phrase, _OUT_OF_SCOPE)
        automaton.make_automaton()
        self._automaton = automaton

        # Homophones are looked for only among whole phrases (titles, keywords,
        # synonyms, lexicon words); a two-character slip only for the catalog's own.
        strong = {p for phrases in phrases_per_entry for p, wt in phrases if wt >= w.synonym}
        sound_terms = {t for t in strong | words if len(t) >= 3} | {
            t for t in strong if len(t) == 2
        }
        sounds = ahocorasick.Automaton()
        for term in sound_terms:
            known = term in self._terms or term in aliases
            if known and len(term) <= 8 and all(is_han(c) for c in term):
                sounds.add_word(sound_key(term), term)
        sounds.make_automaton()
        self._sounds = sounds

    def _entry_terms(self, entry: Entry, phrases: list[tuple[str, float]]) -> dict[str, float]:
        """An entry's terms with their weights (the highest of the places they come from)."""
        w = self.weights
        weights: dict[str, float] = {}
        for phrase, weight in phrases:
            _raise(weights, phrase, weight)
            for part in self._words(phrase):
                if part != phrase:
                    _raise(weights, part, weight * w.part)
        for sentence, weight in entry.sentences:
            for word in self._words(normalize(sentence)):
                _raise(weights, word, weight)
        return weights

    def _link_lexicon(
        self, term_weights: list[dict[str, float]], phrases_per_entry: list[list[tuple[str, float]]]
    ) -> None:
        """Make each lexicon concept a term of the entries that contain it.

        A concept reaches an entry as one of its terms, or by occurring inside one of
        its phrases or sentences (行动不便 in "为行动不便的老人上门…"), where it
        counts as a part of that text rather than the whole. The everyday variants
        are not copied to the entries: at query time a variant found in a message
        stands for its concept (see ``_aliases``), which keeps the index small —
        thousands of variants times thousands of items would not be.
        """
        w = self.weights
        concepts = ahocorasick.Automaton()
        for concept in self.lexicon.concepts:
            concepts.add_word(concept, concept)
        if not len(concepts):
            return
        concepts.make_automaton()
        for entry, weights, phrases in zip(
            self.entries, term_weights, phrases_per_entry, strict=True
        ):
            texts = list(phrases)
            texts += [(normalize_term(text), weight) for text, weight in entry.sentences]
            found: dict[str, float] = {}
            for text, weight in texts:
                for _, concept in concepts.iter(text):
                    strength = weight if concept == text else weight * w.part
                    found[concept] = max(found.get(concept, 0.0), strength, weights.get(concept, 0))
            for concept, strength in found.items():
                _raise(weights, concept, strength)

    def _place_terms(self, names: list[str]) -> set[str]:
        places: set[str] = set()
        for name in names:
            term = normalize_term(name)
            places.add(term)
            places.update(self._words(term))
        return places

    def _words(self, text: str) -> Iterable[str]:
        """Index words of a text: search-mode tokens of two characters or more."""
        for chunk in text.split():
            for word, _, _ in search_tokens(self._tokenizer, chunk):
                if len(word) >= 2 and not word.isdigit() and word not in STOPWORDS:
                    yield word

    # --- matching ------------------------------------------------------------------

    def raw_scores(self, normalized: str) -> tuple[npt.NDArray[np.float64], tuple[str, ...]]:
        """Every entry's raw score for a normalised message, and the terms found in it."""
        terms, off_catalog = self._find_terms(normalized)
        scores = self._terms.scores(self._expand(terms))
        if self.weights.characters:
            # Characters count even inside found terms: measured, counting them again
            # ranks items whose texts share the term's wording above a lone keyword.
            grams = dict.fromkeys(_grams(normalized) - STOP_CHARS, self.weights.characters)
            scores += self._grams.scores(grams)
        if off_catalog:
            scores *= self.weights.out_of_scope
        return scores, tuple(terms)

    def _expand(self, terms: dict[str, float]) -> dict[str, float]:
        """Replace everyday words by the concepts they stand for (terms stay as they are)."""
        expanded: dict[str, float] = {}
        for term, factor in terms.items():
            if term in self._terms:
                expanded[term] = max(expanded.get(term, 0.0), factor)
            for concept, alias_factor in self._aliases.get(term, {}).items():
                expanded[concept] = max(expanded.get(concept, 0.0), factor * alias_factor)
        return expanded

    def _find_terms(self, text: str) -> tuple[dict[str, float], bool]:
        """Terms in the message with their factor (1, or less for homophones), and
        whether an off-catalog phrase was seen."""
        if not text:
            return {}, False
        # A term must begin and end where jieba sees words begin and end, so that
        # 假警察 is not read inside 暑假警察 nor 电工 inside 停电工作.
        edges: set[int] | None = None
        hits: list[tuple[int, int, str, float]] = []  # start, end, term, factor
        off_catalog = False
        for last, term in self._automaton.iter(text):
            if term == _OUT_OF_SCOPE:
                off_catalog = True
                continue
            start, end = last - len(term) + 1, last + 1
            if edges is None:
                edges = {0, len(text)}
                for _, s, e in search_tokens(self._tokenizer, text, hmm=False):
                    edges.update((s, e))
            if start in edges and end in edges:
                hits.append((start, end, term, 1.0))

        sounds, starts = sound_text(text)
        position_to_char = {position: index for index, position in enumerate(starts)}
        for end, term in self._sounds.iter(sounds):
            key_length = len(sound_key(term))
            start_char = position_to_char.get(end - key_length + 1)
            if start_char is None:
                continue
            span = text[start_char : start_char + len(term)]
            if span == term:
                continue  # an exact hit, already found above
            if is_common_word(span):
                continue  # a real word that happens to sound alike (可以/可疑), not a slip
            same = sum(a == b for a, b in zip(span, term, strict=True))
            if len(term) == 2 and same == 0:
                continue  # two unrelated characters that happen to sound alike
            hits.append((start_char, start_char + len(term), term, self.weights.sound_alike))

        # Longest first; a hit inside a longer accepted hit adds nothing new.
        hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        terms: dict[str, float] = {}
        if not hits:
            return terms, off_catalog
        # reach[s]: the furthest end of an accepted hit starting at s. A hit covering
        # [start, end) starts at most ``longest`` before ``end``, so only that many
        # starts are looked at: linear in the hits, where comparing each hit with
        # every accepted one was quadratic (a term repeated 10,000 times took 6 s).
        longest = hits[0][1] - hits[0][0]
        reach = [0] * (len(text) + 1)
        for start, end, term, factor in hits:
            if any(reach[s] >= end for s in range(max(0, end - longest), start + 1)):
                continue
            reach[start] = max(reach[start], end)
            terms[term] = max(terms.get(term, 0.0), factor)
        return terms, off_catalog


class Matcher:
    """An immutable index of one catalog version; ``match`` is safe from any thread.

    It also carries the index of the catalog's answers to residents' questions
    (``faq``), so that the running service swaps both with the catalog.
    """

    def __init__(
        self,
        catalog: Catalog,
        lexicon: Lexicon | None = None,
        *,
        weights: Weights | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        """Build the indexes (blocking, ~0.1–1 s: run it in a thread from async code)."""
        from catalog.faq import FaqIndex  # catalog.faq builds on this module

        self.catalog = catalog
        self.weights = weights or Weights()
        self.thresholds = thresholds or Thresholds()
        base = lexicon if lexicon is not None else shipped_lexicon()
        self.lexicon = base.extended(catalog.document.lexicon)
        self._items: list[Item] = list(catalog.items)
        self._index = TermIndex(
            item_entries(catalog, self.weights), self.lexicon, self.weights, place_names(catalog)
        )
        self.faq: FaqIndex = FaqIndex(catalog, self.lexicon, weights=self.weights)
        """The answers to residents' questions about the community (``faq:``)."""

    @property
    def version(self) -> str:
        return self.catalog.version

    @property
    def _tokenizer(self) -> jieba.Tokenizer:
        return self._index.tokenizer

    # --- matching ------------------------------------------------------------------

    def match(self, text: str) -> MatchResult:
        """The decision on a resident's message, read up to :data:`WINDOW` characters.

        The result keeps the whole text (it is what gets recorded as a need); only
        its beginning is read, so that a pasted article costs what a long message
        does.
        """
        scores, terms = self.raw_scores(normalize(text[:WINDOW]))
        return self._decide(text, scores, terms)

    def match_faq(self, text: str) -> FaqMatch | None:
        """The FAQ entry that confidently answers this message, or None (see
        :meth:`catalog.faq.FaqIndex.match`)."""
        return self.faq.match(text)

    def raw_scores(self, normalized: str) -> tuple[npt.NDArray[np.float64], tuple[str, ...]]:
        """Every item's raw score for a normalised message, and the terms found in it."""
        return self._index.raw_scores(normalized)

    def _decide(
        self, text: str, scores: npt.NDArray[np.float64], terms: tuple[str, ...]
    ) -> MatchResult:
        t = self.thresholds
        leaders = np.argpartition(-scores, 3)[:3] if len(scores) > 3 else np.arange(len(scores))
        ranked = sorted(
            ((int(i), float(scores[i])) for i in leaders if scores[i] > 0),
            key=lambda kv: (-kv[1], kv[0]),
        )
        candidates = tuple(Candidate(self._items[i].id, self._confidence(s)) for i, s in ranked)
        if not ranked:
            return MatchResult(text, "none", None, 0.0, (), terms)
        top_index, best = ranked[0]
        confidence = self._confidence(best)
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        if confidence >= t.matched and runner_up < t.lead * best:
            return MatchResult(
                text, "matched", self._items[top_index].id, confidence, candidates, terms
            )
        if confidence >= t.ambiguous and terms:
            # Without a single catalog term, shared characters alone may suggest a
            # confident match but never a list of guesses.
            choices = tuple(
                c
                for c, (_, raw) in zip(candidates, ranked, strict=True)
                if raw >= t.choice_share * best
            )
            if len(choices) < 2:
                choices = candidates[:2]
            if len(choices) >= 2:
                return MatchResult(text, "ambiguous", None, confidence, choices, terms)
            # A lone, weak candidate is a guess, not a choice: say nothing matched.
        return MatchResult(text, "none", None, confidence, candidates, terms)

    def _confidence(self, raw: float) -> float:
        return raw / (raw + self.thresholds.half)


def place_names(catalog: Catalog) -> list[str]:
    """The community's own place names: itself, its grids and their areas."""
    community = catalog.document.community
    names = [community.name] + [g.name for g in community.grids]
    return names + [area for g in community.grids for area in g.areas]


def _grams_of(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(gram for text in texts for gram in _grams(text))


@lru_cache(maxsize=65536)
def _grams(text: str) -> frozenset[str]:
    """Han characters and adjacent character pairs of a text."""
    chars = [c if is_han(c) else " " for c in text]
    grams = {c for c in chars if c != " "}
    grams.update(a + b for a, b in itertools.pairwise(chars) if a != " " and b != " ")
    return frozenset(grams)


def _raise(weights: dict[str, float], term: str, weight: float) -> None:
    if term and weight > weights.get(term, 0.0):
        weights[term] = weight


# Characters too common to carry meaning on their own.
STOP_CHARS = frozenset(
    "的了吗呢吧啊呀哦哈嘛我你他她它们是在有和就都也还要去来说这那个一不人么什怎样能可以会想让给把被从到对为与及或很太好多少几下上里中"
)

# Function words and filler that say nothing about which service is wanted.
STOPWORDS = frozenset(
    """
    一个 一些 一下 一次 一起 以及 以上 以下 可以 可能 能够 进行 提供 开展 为了 并且 或者 还有
    这个 那个 这些 那些 这样 那样 什么 怎么 怎样 如何 哪里 哪个 哪些 多少 为什么 是否 是不是
    我们 你们 他们 她们 大家 自己 人员 相关 有关 工作 服务 居民 群众 社区 问题 情况 方面 时间
    每月 每周 每天 现场 免费 帮助 帮忙 协助 负责 需要 需求 处理 办理 咨询 反映 了解 知识 活动
    请问 你好 您好 谢谢 麻烦 请 的话 但是 因为 所以 如果 已经 还是 就是 不是 没有 不能 能不能
    早上 上午 中午 下午 晚上 夜里 白天 今天 明天 昨天 周末 平时 每次 经常 最近 期间 定期 日常
    东西 地方 时候 发现 不好 加入 推荐 组织 常见 一对 一对一 手把手 内容 注意事项 材料 流程
    """.split()
)
