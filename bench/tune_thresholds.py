#!/usr/bin/env python3
"""Grid-search the matcher's decision thresholds on a labelled set; prints a table.

    python bench/tune_thresholds.py --catalog ../shared/eval/catalog.yaml \
        --set ../shared/eval/match-dev.jsonl [--check bench/data/synthetic-heldout.jsonl]

Scores are computed once per message; each threshold combination then re-runs only
the decision, exactly as the matcher does. Combinations are ranked by how close they
come to the acceptance targets (top-1 0.95, top-3 0.98, rejection 0.90) on --set;
--check shows the same figures on a second set, to catch over-fitting.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

from catalog.loader import load_catalog
from catalog.matcher import Matcher
from catalog.normalize import normalize
from catalog.thresholds import Thresholds

TARGETS = {"top1": 0.95, "top3": 0.98, "rejection": 0.90}


def prepared(matcher: Matcher, path: Path) -> list[tuple[str, object, tuple[str, ...], set[str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    out = []
    for row in rows:
        scores, terms = matcher.raw_scores(normalize(row["text"]))
        out.append((row["text"], scores, terms, set(row["expect"])))
    return out


def figures(matcher: Matcher, data: list) -> dict[str, float]:
    top1 = top3 = wanted = rejected = unwanted = 0
    for text, scores, terms, expect in data:
        result = matcher._decide(text, scores, terms)
        if expect:
            wanted += 1
            guess = result.item if result.decision == "matched" else None
            if result.decision == "ambiguous":
                guess = result.candidates[0].item
            top1 += guess in expect
            top3 += any(c.item in expect for c in result.candidates[:3])
        else:
            unwanted += 1
            rejected += result.decision == "none"
    return {"top1": top1 / wanted, "top3": top3 / wanted, "rejection": rejected / unwanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", required=True, type=Path)
    parser.add_argument("--set", dest="tune_set", required=True, type=Path)
    parser.add_argument("--check", type=Path)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()

    matcher = Matcher(load_catalog(args.catalog))
    tune = prepared(matcher, args.tune_set)
    check = prepared(matcher, args.check) if args.check else None
    grid = itertools.product(
        [2.0, 2.5, 3.0, 4.0], [0.55, 0.6, 0.65], [0.4, 0.45, 0.5, 0.55], [0.65, 0.75, 0.85]
    )
    results = []
    for half, matched, ambiguous, lead in grid:
        if ambiguous > matched:
            continue
        matcher.thresholds = dataclasses.replace(
            Thresholds(), half=half, matched=matched, ambiguous=ambiguous, lead=lead
        )
        f = figures(matcher, tune)
        worst = min(f[k] / TARGETS[k] for k in TARGETS)
        g = figures(matcher, check) if check else None
        results.append((worst, sum(f.values()), f, g, (half, matched, ambiguous, lead)))
    results.sort(key=lambda r: (-r[0], -r[1]))
    print(
        f"{'half':>5} {'match':>6} {'ambig':>6} {'lead':>5} | "
        f"{'top-1':>6} {'top-3':>6} {'reject':>6}"
        + (f" | {'check t1':>8} {'t3':>6} {'rej':>6}" if check else "")
    )
    for _, _, f, g, (half, matched, ambiguous, lead) in results[: args.top]:
        line = (
            f"{half:>5} {matched:>6} {ambiguous:>6} {lead:>5} | {f['top1']:>6.3f} {f['top3']:>6.3f}"
            f" {f['rejection']:>6.3f}"
        )
        if g:
            line += f" | {g['top1']:>8.3f} {g['top3']:>6.3f} {g['rejection']:>6.3f}"
        print(line)


if __name__ == "__main__":
    main()
