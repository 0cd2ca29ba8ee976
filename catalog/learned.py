"""What staff taught the bot in the learning inbox, folded into a catalog document.

Staff decide, for a phrase residents used that the bot did not understand, that it
is a way of asking for an item (added to its ``synonyms``), a way of asking a FAQ
entry's question (added to its ``questions``), or a phrase that says nothing (added
to the catalog's ``ignore`` list). Decisions are stored apart from the
catalog YAML (``storage/repositories/inbox.py``) so that importing a new YAML keeps
them; every process applies them here, to the imported document, before it builds
the matcher. ``order-menu catalog export`` writes the result, so staff can commit
the phrases to their YAML.

A phrase has one meaning: applying a decision first takes the phrase out of every
other item's synonyms, other FAQ entry's questions and the ignore list, so a phrase
staff moved from one item to another does not leave both items tied. A decision
whose item or FAQ entry no longer exists (a new YAML dropped it) is *stale*: it is
not applied, and the console shows it as such; it is never an error.

Everything here is pure: same document and decisions, same result (and so the same
catalog version, hence the same cached matcher in every process).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from catalog.model import Catalog
from catalog.normalize import normalize, normalize_term
from catalog.schema import CatalogDocument, Item

Action = Literal["synonym", "faq", "ignore"]
ACTIONS: tuple[Action, ...] = ("synonym", "faq", "ignore")

PHRASE_MIN = 2
PHRASE_MAX = 40
"""Characters of a learned phrase: one character says too little to mean a service,
and a phrase longer than a short sentence would only ever match itself."""


@dataclass(frozen=True)
class Learned:
    """One decision in effect: ``phrase`` means ``target`` (an item id or FAQ id)."""

    phrase: str
    action: Action
    target: str | None = None


@dataclass(frozen=True)
class Learning:
    """The decisions in effect for a community, and the revision they were read at.

    The revision is the id of the community's newest decision row: each process
    compares it with the stored one on the same poll that notices a new catalog
    version, so a decision reaches every process within that poll's interval."""

    revision: int = 0
    decisions: tuple[Learned, ...] = ()


NOTHING_LEARNED = Learning()


def phrase_of(text: str) -> str:
    """The canonical form of a phrase: normalised, without spaces or punctuation.

    That is how the matcher reads catalog terms (``normalize_term``), so a phrase
    stored this way is found in a message whatever its punctuation."""
    return normalize_term(text)


def phrase_problem(phrase: str) -> str | None:
    """Why ``phrase`` (already canonical) cannot be learned, in the staff's words."""
    if len(phrase) < PHRASE_MIN:
        return f"说法太短了，请至少写 {PHRASE_MIN} 个字。"
    if len(phrase) > PHRASE_MAX:
        return f"说法太长了，请写 {PHRASE_MAX} 个字以内的关键说法。"
    return None


def is_stale(document: CatalogDocument, learned: Learned) -> bool:
    """True when the decision's target is not in ``document`` (it is then not applied)."""
    if learned.action == "synonym":
        return not any(item.id == learned.target for item in document.items)
    if learned.action == "faq":
        return not any(entry.id == learned.target for entry in document.faq)
    return False


def apply_learned(document: CatalogDocument, decisions: Iterable[Learned]) -> CatalogDocument:
    """``document`` with every applicable decision folded in, in the order given (a
    later decision on the same phrase wins). Returns ``document`` itself when no
    decision changes anything, so a community without decisions keeps its version."""
    items = list(document.items)
    faq = list(document.faq)
    ignore = list(document.ignore)
    changed = False
    for learned in decisions:
        phrase = phrase_of(learned.phrase)
        if not phrase or is_stale(document, learned):
            continue
        # One meaning per phrase: take it out of everywhere else first.
        keep_item = learned.target if learned.action == "synonym" else None
        for index, item in enumerate(items):
            kept = [s for s in item.synonyms if item.id == keep_item or phrase_of(s) != phrase]
            if len(kept) != len(item.synonyms):
                items[index] = item.model_copy(update={"synonyms": kept})
                changed = True
        keep_faq = learned.target if learned.action == "faq" else None
        for index, entry in enumerate(faq):
            asked = [q for q in entry.questions if entry.id == keep_faq or phrase_of(q) != phrase]
            if asked and len(asked) != len(entry.questions):  # an entry keeps one question
                faq[index] = entry.model_copy(update={"questions": asked})
                changed = True
        if learned.action != "ignore" and any(phrase_of(p) == phrase for p in ignore):
            ignore = [p for p in ignore if phrase_of(p) != phrase]
            changed = True
        if learned.action == "synonym":
            index = next(i for i, item in enumerate(items) if item.id == learned.target)
            if not _names(items[index], phrase):
                items[index] = items[index].model_copy(
                    update={"synonyms": [*items[index].synonyms, phrase]}
                )
                changed = True
        elif learned.action == "faq":
            index = next(i for i, entry in enumerate(faq) if entry.id == learned.target)
            if not any(phrase_of(q) == phrase for q in faq[index].questions):
                faq[index] = faq[index].model_copy(
                    update={"questions": [*faq[index].questions, phrase]}
                )
                changed = True
        elif not any(phrase_of(p) == phrase for p in ignore):
            ignore.append(phrase)
            changed = True
    if not changed:
        return document
    return document.model_copy(update={"items": items, "faq": faq, "ignore": ignore})


def _names(item: Item, phrase: str) -> bool:
    """Does the item already say ``phrase`` as its title, a keyword or a synonym?"""
    return any(phrase_of(t) == phrase for t in (item.title, *item.keywords, *item.synonyms))


def with_learned(catalog: Catalog, learning: Learning) -> Catalog:
    """The catalog the service runs on: ``catalog`` with its community's decisions."""
    if not learning.decisions:
        return catalog
    document = apply_learned(catalog.document, learning.decisions)
    if document is catalog.document:
        return catalog
    return Catalog(document, source=catalog.source)


def is_ignored(document: CatalogDocument, text: str) -> bool:
    """Is this message, as a whole, one of the phrases the catalog says mean nothing?

    For the dialogue layer: such a message starts no order and is no unmet need.
    Punctuation, spaces and repeated marks do not matter (好的，收到！ is 好的收到)."""
    if not document.ignore:
        return False
    said = phrase_of(normalize(text[:200]))
    return bool(said) and any(phrase_of(p) == said for p in document.ignore)


def regression_line(learned: Learned) -> dict[str, object]:
    """A labelled message for the regression set: what the phrase must lead to.

    The format of the labelled message sets (``{"text", "expect", "act"}``):
    a synonym expects its item; an ignored phrase and a FAQ question expect no item
    (no order may start), the latter naming its FAQ entry."""
    if learned.action == "synonym":
        return {"text": learned.phrase, "expect": [learned.target], "act": "request"}
    if learned.action == "faq":
        return {"text": learned.phrase, "expect": [], "act": "question", "faq": learned.target}
    return {"text": learned.phrase, "expect": [], "act": "chat"}
