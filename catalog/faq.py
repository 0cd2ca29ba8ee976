"""Answers to residents' questions about the community (the catalog's ``faq:``).

Residents ask the service more than they order from it: 社区几点上班, 开居住证明要带
什么, 电梯坏了找谁. A catalog answers such questions with short FAQ entries; this
module finds the entry that answers a message, with the matcher's own machinery: each
entry becomes an :class:`~catalog.matcher.Entry` (its questions are strong phrases
and examples, its answer counts like an item's description) and a
:class:`~catalog.matcher.TermIndex` scores the message against all of them.

Two things differ from items, both because questions are asked differently:

- **What a question asks about** (its aspect: opening hours, place, phone, documents,
  cost, who is in charge …) is said in many interchangeable words: 几点上班 and 几点开门,
  在哪 and 怎么走, 电话 and 号码. Each aspect is one abstract term, so that
  居委会几点开门 finds the entry written as 社区几点上班. Aspect words are general
  Chinese, not any community's: they live here, not in a catalog.
- **A wrong answer is worse than none**: a resident told the wrong office hours walks
  there for nothing, where "I'll ask the staff" costs a short wait. So only a
  question is answered (帮我开个居住证明 asks for the service, not how to get it); an
  aspect alone never answers (附近菜市场几点关门 asks about hours, but not ours); the
  entry must share a subject with the message, score high, and clearly lead the
  runner-up (see :class:`FaqThresholds`). Otherwise :meth:`FaqIndex.match` returns
  None and the caller hands the question on to staff.

The owning unit's name is not indexed: most entries belong to the residents'
committee, so its name would only blur them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from catalog.lexicon import Lexicon, shipped_lexicon
from catalog.matcher import STOPWORDS, WINDOW, Entry, TermIndex, Weights, place_names
from catalog.model import Catalog
from catalog.normalize import normalize, normalize_term
from catalog.schema import Faq

# Each aspect: an abstract term (ASCII, so that no message contains it and no homophone
# is looked for), then the everyday words that ask about it.
_ASPECTS = """
faq-hours: 上班 下班 开门 关门 办公时间 上班时间 营业 开放 值班 放假 节假日 几点有人 有没有人在
faq-when:  几点 什么时候 啥时候 哪天 几号 多久 时间 几月
faq-where: 在哪 在哪里 在哪儿 哪里 哪儿 什么地方 啥地方 地址 位置 怎么走 怎么去 几楼 几栋
faq-phone: 电话 号码 联系方式 座机 热线 怎么联系 联系电话 电话号码 打哪个电话 手机号
faq-bring: 材料 资料 带什么 要带 准备什么 准备啥 手续 证件 需要什么 要什么 带哪些 带啥
faq-how:   怎么办 怎么申请 怎么弄 怎么办理 如何办理 咋办 流程 办理
faq-cost:  多少钱 收费 要钱 免费 费用 花钱 几块钱 收钱
faq-who:   找谁 谁管 谁负责 哪个部门 找哪个
faq-terms: 条件 资格 符合
"""

ASPECTS: dict[str, tuple[str, ...]] = {
    name: tuple(words.split())
    for name, words in (line.split(":") for line in _ASPECTS.strip().splitlines())
}
"""The aspects a question asks about, each with the words that ask about it."""

QUESTION_WORDS = frozenset(
    """
    有没有 会不会 要不要 需不需要 可不可以 能不能 行不行 是不是 为什么 咋样 怎么样
    请问 想问 问一下 问问 知道 告诉 一下 多少 不要 要是 可以 还能 能够
    """.split()
)
"""Words that make a sentence a question and say nothing of what it asks."""

FAQ_STOPWORDS = (STOPWORDS - {"社区"}) | QUESTION_WORDS | {w for ws in ASPECTS.values() for w in ws}
"""An entry's words that are not its terms: the matcher's, plus question words and
aspect words (their aspect is the term). 社区 stays a term: in 社区几点上班 it is the
subject, where in a request (社区能帮我修水管吗) it is only an address."""


@dataclass(frozen=True)
class FaqThresholds:
    """When an entry is the answer.

    Chosen on 91 questions written in other words than the entries' own, and 46
    requests, greetings, thanks and questions the catalogs do not answer, for the
    demo catalog and tests/catalogs/qingshiwan.yaml: every wrong answer there scored
    below 0.48, every right one that passed the other checks above 0.52.
    ``tests/test_faq.py`` holds what they must keep doing.
    """

    answer: float = 0.5
    """Minimum confidence (0–1) to give an entry's answer (a raw score of ``half``)."""
    lead: float = 0.75
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
    """The terms found in the message (for explanations and logs)."""


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
        self._index: TermIndex | None = None
        if self.entries:
            self._index = TermIndex(
                faq_entries(catalog, self.weights),
                lexicon.extended(ASPECTS),
                self.weights,
                place_names(catalog),
                stopwords=FAQ_STOPWORDS,
            )

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, text: str, limit: int = 3) -> tuple[FaqMatch, ...]:
        """The best-scoring entries, best first, whether or not one is the answer:
        for staff tools and logs, never to answer a resident with."""
        scores, terms = self._scores(text)
        return tuple(
            FaqMatch(self.entries[i], self._confidence(float(scores[i])), terms)
            for i in _best(scores, limit)
        )

    def match(self, text: str) -> FaqMatch | None:
        """The entry that answers this message, or None when none confidently does.

        An entry is the answer when its confidence reaches ``thresholds.answer``, the
        runner-up scores below ``thresholds.lead`` of it, and the message shares a
        subject with it: a term that is not only an aspect (几点, 在哪) — shared
        characters or aspects alone never answer.
        """
        if self._index is None or not is_question(text):
            return None
        scores, terms = self._scores(text)
        ranked = _best(scores, 2)
        if not ranked:
            return None
        top = ranked[0]
        best = float(scores[top])
        t = self.thresholds
        if self._confidence(best) < t.answer:
            return None
        if len(ranked) > 1 and scores[ranked[1]] >= t.lead * best:
            return None
        subjects = {term: 1.0 for term in terms if term not in _ASPECT_WORDS}
        if not subjects or self._index.term_scores(subjects)[top] <= 0:
            return None
        return FaqMatch(self.entries[top], self._confidence(best), terms)

    def _scores(self, text: str) -> tuple[npt.NDArray[np.float64], tuple[str, ...]]:
        if self._index is None:
            return np.zeros(0), ()
        return self._index.raw_scores(normalize(text[:WINDOW]))

    def _confidence(self, raw: float) -> float:
        return raw / (raw + self.thresholds.half)


_QUESTION = re.compile(
    r"[?？]|吗|么|怎|什么|啥|哪|谁|几点|几号|几楼|几栋|几时|几月|多少|多久|多长|是否|是不是"
    r"|有没有|能不能|能否|可不可以|会不会|要不要|需不需要|行不行|请问|想问|问下|问一下"
    r"|想知道|咨询|了解|[不没][?？!！。\s]*$"
)
"""Question marks, words and particles (上班不 is a question too)."""


def is_question(text: str) -> bool:
    """Whether a message asks for information rather than for a service: it has a
    question word or mark, or names what it wants to know (居委会联系电话). 帮我开个
    居住证明 asks for the service; 居住证明怎么开 asks how."""
    text = text[:WINDOW]
    if _QUESTION.search(text):
        return True
    normalized = normalize_term(text)
    return any(word in normalized for word in _ASPECT_WORDS)


_ASPECT_WORDS = frozenset(normalize_term(w) for ws in ASPECTS.values() for w in ws)


def _best(scores: npt.NDArray[np.float64], limit: int) -> list[int]:
    """Indexes of the ``limit`` highest positive scores, best first (ties: first entry)."""
    order = np.argsort(-scores, kind="stable")[:limit]
    return [int(i) for i in order if scores[i] > 0]


def faq_entries(catalog: Catalog, weights: Weights) -> list[Entry]:
    """The catalog's FAQ as index entries.

    Questions are how residents ask, so they count as strongly as an item's keywords
    (and as its examples); the answer's words count like an item's description (a
    resident may ask with them: 居住证明要带户口本吗). Each aspect a question or the
    answer speaks of becomes a term with the weight of the text it is in.
    """
    w = weights
    entries = []
    for faq in catalog.document.faq:
        phrases = [(q, w.keyword) for q in faq.questions]
        aspects: dict[str, float] = {}
        for text, weight in [(q, w.keyword) for q in faq.questions] + [(faq.answer, w.description)]:
            for aspect in _aspects_in(normalize_term(text)):
                aspects[aspect] = max(aspects.get(aspect, 0.0), weight)
        phrases += list(aspects.items())
        sentences = [(q, w.example) for q in faq.questions] + [(faq.answer, w.description)]
        entries.append(Entry(faq.id, tuple(phrases), tuple(sentences)))
    return entries


def _aspects_in(text: str) -> list[str]:
    return [aspect for aspect, words in ASPECTS.items() if any(word in text for word in words)]
