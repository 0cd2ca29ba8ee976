"""One reading of a resident's message: the act, the catalog item, the FAQ answer.

The act comes from the wording (``catalog.acts``); the item from the catalog matcher;
the answer from the catalog's FAQ. Each alone misreads people: the matcher hears
上周的消防演练搞得真好 as a request for a fire inspection, the act patterns cannot
tell 楼上老往我家滴水 (a problem to fix, no word of asking) from small talk. Read
together they decide what the bot does, in one place, so that the conversation
(``handlers``) and the benchmark (``bench/match_eval.py``) agree.

Pure CPU work, no I/O: it runs in a worker thread, once per message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from catalog.acts import Act, ActReading, read_act
from catalog.faq import FaqMatch
from catalog.learned import is_ignored
from catalog.matcher import Matcher, MatchResult

SURE_ANSWER = 0.7
"""An FAQ answer this confident is given even to a message that asks for something
done (请问怎么开居住证明); below it, such a message goes to the services."""
STRONG_MATCH = 0.8
"""A match this confident is a request even where the wording looked off-scope or
chatty (小区停车位多少钱一个月 asks a community service)."""


@dataclass(frozen=True)
class Reading:
    text: str
    act: Act
    detail: ActReading
    match: MatchResult
    faq: FaqMatch | None = None
    """The FAQ entry that answers the message, when it is a question the FAQ knows."""
    unclear: bool = False
    """Read as chat only for want of anything else: no word of asking, no service, no
    sign of small talk either (3栋, 嗯那个): the bot says it did not understand."""

    @property
    def wants_service(self) -> bool:
        """The bot should offer a catalog service (start a form or list choices)."""
        return self.act is Act.REQUEST and self.match.decision in ("matched", "ambiguous")

    @property
    def offer(self) -> str | None:
        """With an FAQ answer, the service the question also names (offered in one tap
        after the answer: 义诊几号？ gets the date, and the 义诊 to book)."""
        if self.faq is None or self.match.decision == "none" or not self.match.candidates:
            return None
        return self.match.candidates[0].item

    @property
    def answer(self) -> str | None:
        """The FAQ's answer, when the FAQ answers the message."""
        return None if self.faq is None else self.faq.faq.answer

    def without_orders(self) -> Reading:
        """How the message reads from a resident with no order it could be about.

        An unsolved outcome (还在漏, 灯还是不亮) is then a problem to report (or, when
        it speaks of a promise or a visit, a complaint for staff), and a
        "cancellation" that asks for something (老人来不了，能上门办吗) a request. Other
        outcomes, ratings and cancellations stay what they are (there is simply
        nothing to rate or cancel)."""
        if self.act is Act.OUTCOME and self.detail.outcome == "unsolved":
            # 说好的上门换药，等到下午也没见人: a promise the system does not know of
            # (made by phone, say) is for staff to look into; 灯还是不亮 is a report.
            return replace(self, act=Act.COMPLAINT if self.detail.refers_back else Act.REQUEST)
        if self.act is Act.CANCEL and self.detail.asks_new:
            return replace(self, act=Act.REQUEST)
        return self

    @property
    def unmet_need(self) -> bool:
        """A request the catalog cannot serve: what the 需求清单 is for."""
        return self.act is Act.REQUEST and self.match.decision == "none"


def understand(text: str, matcher: Matcher) -> Reading:
    """Read a message (blocking: call it in a worker thread from async code)."""
    detail = read_act(text)
    if detail.act is Act.EMERGENCY:
        return Reading(text, Act.EMERGENCY, detail, _nothing(text))
    match = matcher.match(text)
    act, unclear = detail.act, False
    if is_ignored(matcher.catalog.document, text):
        act = Act.CHAT
    elif (
        act is Act.CHAT
        and detail.off_scope
        and match.decision == "matched"
        and match.score >= STRONG_MATCH
    ):
        # 小区停车位多少钱一个月 reads like shopping but names a service clearly. News
        # and praise (消防演练搞得真好) stay chat however clearly they name one.
        act = Act.REQUEST
    elif act is Act.REQUEST and not (detail.asks or detail.question) and match.decision == "none":
        # Neither a word of asking nor a service it names: not a need.
        act, unclear = Act.CHAT, True
    if act is not Act.REQUEST and _confidential(match, matcher):
        # 投诉工作人员吃拿卡要: a report for the unit that keeps it confidential, never a
        # complaint or praise that every staff member reads.
        act = Act.REQUEST
    faq = None
    if act in (Act.REQUEST, Act.CHAT):
        faq = _faq_answer(text, matcher, detail, match)
        if faq is not None:
            act = Act.QUESTION
        elif (
            act is Act.REQUEST
            and match.decision == "none"
            and detail.question
            and not detail.asks_new
        ):
            # Nobody answers it here: staff will (unless it is about shopping or travel).
            act = Act.CHAT if detail.off_scope else Act.QUESTION
    return Reading(text, act, detail, match, faq, unclear and act is Act.CHAT)


def _faq_answer(
    text: str, matcher: Matcher, detail: ActReading, match: MatchResult
) -> FaqMatch | None:
    """The FAQ entry answering the message, unless a service fits it better: a question
    is answered from the FAQ; a request that names a service goes to that service."""
    found = matcher.match_faq(text)
    if found is None:
        return None
    if match.decision == "matched" and (not detail.question or detail.asks_new):
        return None
    # 义诊怎么报名 asks how to book a service the catalog offers: the service answers
    # it better than a general answer, unless the FAQ entry fits more closely.
    best_item = match.candidates[0].score if match.candidates else 0.0
    asks_to_know = detail.question and not (detail.asks_new or detail.wants_done)
    if asks_to_know and not (match.decision == "matched" and match.score >= STRONG_MATCH):
        # 垃圾几点收？ asks to be told: the FAQ answers, and a service it names is
        # offered after the answer (``Reading.offer``).
        return found
    if found.score < best_item:
        return None
    if detail.wants_done and (match.decision != "none" or found.score < SURE_ANSWER):
        # 能有个人陪吗 / 能帮我开锁吗 want something done: an answer only when sure.
        return None
    return found


def _confidential(match: MatchResult, matcher: Matcher) -> bool:
    """The matcher's first reading of the message is a confidential item."""
    if match.decision == "none" or not match.candidates:
        return False
    return matcher.catalog.item(match.candidates[0].item).confidential


def _nothing(text: str) -> MatchResult:
    return MatchResult(text=text, decision="none", item=None, score=0.0, candidates=())
