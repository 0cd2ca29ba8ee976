#!/usr/bin/env python3
"""Grid-search the matcher's decision thresholds on a labelled set; prints a table.

    python bench/tune_thresholds.py [--shared ../shared] [--catalog FILE] [--set FILE]
        [--check bench/data/synthetic-heldout.jsonl]

By default it tunes on the labelled dev set against the reference catalog, both read
from ../shared/eval beside the repository (``--shared`` points elsewhere). Without a
dev set, as in a fresh clone, it stops with one line saying so: the synthetic set is
the held-out check, and tuning on it would spoil it. Without the reference catalog it
says so and uses the demo catalog.

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

import numpy as np
import numpy.typing as npt
from evaldata import add_shared_option, choose_catalog, eval_files, note_fallback, shown

from catalog.loader import load_catalog
from catalog.matcher import Matcher
from catalog.normalize import normalize
from catalog.thresholds import Thresholds

TARGETS = {"top1": 0.95, "top3": 0.98, "rejection": 0.90}


Prepared = list[tuple[str, npt.NDArray[np.float64], tuple[str, ...], set[str]]]
"""Per message: its text, every item's raw score, the terms found, the expected ids."""


def prepared(matcher: Matcher, path: Path) -> Prepared:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    out: Prepared = []
    for row in rows:
        scores, terms = matcher.raw_scores(normalize(row["text"]))
        out.append((row["text"], scores, terms, set(row["expect"])))
    return out


def figures(matcher: Matcher, data: Prepared) -> dict[str, float]:
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_shared_option(parser)
    parser.add_argument("--catalog", type=Path, help="default: the reference catalog")
    parser.add_argument("--set", dest="tune_set", type=Path, help="default: the dev set")
    parser.add_argument("--check", type=Path)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()

    files = eval_files(args.shared)
    tune_set = args.tune_set or files.dev_set
    if tune_set is None:
        parser.exit(
            2,
            f"error: no match-dev.jsonl in {files.folder} to tune on (--shared DIR points at "
            "it, or --set FILE); not tuning on the synthetic held-out set, which checks tuning\n",
        )
    catalog_path = choose_catalog(args.catalog, files)
    note_fallback(
        files,
        catalog_given=args.catalog is not None,
        sets_given=True,
        catalog=catalog_path,
        sets=[tune_set],
    )
    print(f"tuning {shown(catalog_path)} on {shown(tune_set)}")
    matcher = Matcher(load_catalog(catalog_path))
    tune = prepared(matcher, tune_set)
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
