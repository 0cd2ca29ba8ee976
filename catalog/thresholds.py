"""The matcher's decision thresholds, in a module light enough for the settings to import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on the confidence scale (0–1). Defaults tuned on the dev set."""

    matched: float = 0.6
    """Minimum confidence to answer with one item."""
    ambiguous: float = 0.45
    """Minimum confidence to offer choices instead of saying nothing matched."""
    lead: float = 0.7
    """For ``matched``, the runner-up's raw score must be below this share of the top.
    0.7 rather than 0.75: on the second community's set a confidently wrong order fell
    from 2.9 % to 2.0 % of messages, the first choice offered stayed right as often,
    and only the share answered without a list fell (−2 points); on the dev set nothing
    changed but the list share. A wrong order costs a resident more than one tap."""
    choice_share: float = 0.35
    """Items offered as choices must score at least this share of the top."""
    half: float = 3.0
    """The raw score at which confidence is 0.5 (the saturation curve's midpoint)."""
