#!/usr/bin/env python3
"""Matcher quality and speed: prints a table.

    python bench/match_eval.py [--shared ../shared] [--catalog FILE] [--set FILE ...]

By default it measures the reference catalog on the labelled dev set and on
bench/data/synthetic-heldout.jsonl, reading the first two from ../shared/eval beside
the repository (``--shared`` points elsewhere), and a second community's catalog on
its own messages (bench/data/beiyuan/, written without seeing the lexicon: the gap
between it and the dev set measures over-fitting), and a third community held out
from all tuning (bench/data/nanhai/). Where the shared files are absent,
as in a fresh clone, it says so in one line and measures the demo catalog instead.

Each message is read as the bot reads it (``catalog.understanding``: the act first,
then the item), from a resident with no orders. For each labelled set: top-1
accuracy on messages that expect an item (the prediction is the matched item, or the
first choice offered when ambiguous; nothing when the message is read as greeting,
thanks, question …), the share decided as ``matched`` correctly, top-3 recall,
rejection (messages expecting nothing that start no order), "wrong!" (share of all
messages where the bot confidently started the wrong order), act accuracy where the
set labels acts, overall accuracy, and median/p99 time per message. Then the same
timing on a synthetic catalog of 5,000 items, the index build time and the process's
peak memory. ``--errors`` lists the messages it got wrong.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from evaldata import (
    HELD_OUT_COMMUNITY,
    HELDOUT,
    SECOND_COMMUNITY,
    add_shared_option,
    choose_catalog,
    eval_files,
    note_fallback,
)

from catalog.lexicon import Lexicon
from catalog.loader import load_catalog
from catalog.matcher import Matcher
from catalog.model import Catalog
from catalog.schema import CatalogDocument
from catalog.understanding import Reading, understand

ROW = "{:<34} {:>4} {:>6} {:>7} {:>6} {:>6} {:>6} {:>6} {:>7} {:>9} {:>7}"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def predicted(reading: Reading) -> str | None:
    """The item the bot would offer first: the match, the first of the choices, or the
    service offered after an FAQ answer (one tap, but no order started)."""
    if reading.offer is not None:
        return reading.offer
    if not reading.wants_service:
        return None
    result = reading.match
    if result.decision == "matched":
        return result.item
    return result.candidates[0].item


ACT_GROUPS = {"ack": "chat", "greeting": "greeting"}
"""Acts the labels do not tell apart from a neighbour (好的 is chat in the labels)."""


def evaluate(matcher: Matcher, rows: list[dict[str, Any]], show_errors: bool) -> dict[str, float]:
    times: list[float] = []
    top1 = matched_right = top3 = wanted = rejected = unwanted = overall = 0
    confidently_wrong = acts_labelled = acts_right = 0
    for row in rows:
        start = time.perf_counter()
        # As read from a resident with no orders: the sets say nothing of orders.
        reading = understand(row["text"], matcher).without_orders()
        times.append(time.perf_counter() - start)
        result = reading.match
        expect = set(row["expect"])
        if reading.wants_service and result.decision == "matched" and result.item not in expect:
            confidently_wrong += 1
        if "act" in row:
            acts_labelled += 1
            acts_right += ACT_GROUPS.get(reading.act.value, reading.act.value) == row["act"]
        if expect:
            wanted += 1
            pred = predicted(reading)
            good = pred in expect
            top1 += good
            matched_right += (
                reading.wants_service and result.decision == "matched" and result.item in expect
            )
            top3 += reading.wants_service and any(c.item in expect for c in result.candidates[:3])
            overall += good
        else:
            unwanted += 1
            good = not reading.wants_service
            rejected += good
            overall += good
        if show_errors and not good:
            cands = ", ".join(f"{c.item}:{c.score:.2f}" for c in result.candidates)
            print(
                f"  ✗ want {sorted(expect) or '-'} got {reading.act}/{result.decision} [{cands}]"
                f" terms={list(result.terms)}\n      {row['text']}",
                file=sys.stderr,
            )
    ms = sorted(t * 1000 for t in times)
    return {
        "messages": len(rows),
        "top1": top1 / max(wanted, 1),
        "matched": matched_right / max(wanted, 1),
        "top3": top3 / max(wanted, 1),
        "rejection": rejected / max(unwanted, 1),
        "wrong": confidently_wrong / max(len(rows), 1),
        "acts": acts_right / acts_labelled if acts_labelled else float("nan"),
        "overall": overall / max(len(rows), 1),
        "median_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
    }


def synthetic_catalog(base: Catalog, size: int, seed: int = 7) -> Catalog:
    """``size`` items built from the base catalog's vocabulary, shuffled and recombined."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {w for i in base.items for w in (*i.keywords, i.title, i.category)}
        | {
            d[k : k + 2]
            for d in (i.description for i in base.items)
            for k in range(0, len(d) - 1, 3)
        }
    )
    data = base.document.model_dump(mode="json")
    template = data["items"]
    items = []
    for n in range(size):
        item = dict(template[n % len(template)])
        item["id"] = f"{item['id']}-{n}"
        item["title"] = item["title"] + rng.choice(vocabulary)
        item["keywords"] = rng.sample(vocabulary, 5) + list(item["keywords"])[:2]
        item["description"] = "".join(rng.sample(vocabulary, 12))
        items.append(item)
    data["items"] = items
    return Catalog(CatalogDocument.model_validate(data), source=f"synthetic-{size}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_shared_option(parser)
    parser.add_argument("--catalog", type=Path, help="default: the reference catalog")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        type=Path,
        help="a labelled set (repeatable); default: the dev set and the synthetic set",
    )
    parser.add_argument("--synthetic-items", type=int, default=5000)
    parser.add_argument("--errors", action="store_true", help="list wrong answers on stderr")
    parser.add_argument(
        "--no-lexicon", action="store_true", help="ablation: without the shipped lexicon"
    )
    args = parser.parse_args()

    files = eval_files(args.shared)
    catalog_path = choose_catalog(args.catalog, files)
    sets: list[Path] = args.sets or [p for p in (files.dev_set, HELDOUT) if p is not None]
    note_fallback(
        files,
        catalog_given=args.catalog is not None,
        sets_given=bool(args.sets),
        catalog=catalog_path,
        sets=sets,
    )
    catalog = load_catalog(catalog_path)
    rss_before = rss_mb()
    start = time.perf_counter()
    lexicon = Lexicon() if args.no_lexicon else None
    matcher = Matcher(catalog, lexicon)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    Matcher(catalog, lexicon)  # a second build: the shared jieba dictionary is already loaded
    rebuild_s = time.perf_counter() - start

    header = ROW.format(
        "catalog / set",
        "n",
        "top-1",
        "matched",
        "top-3",
        "reject",
        "wrong!",
        "acts",
        "overall",
        "median ms",
        "p99 ms",
    )
    print(header)
    print("-" * len(header))
    all_rows: list[dict[str, Any]] = []
    runs: list[tuple[str, Matcher, Path]] = [(catalog_path.stem, matcher, path) for path in sets]
    if not args.sets and args.catalog is None:
        for other_catalog, other_set in (SECOND_COMMUNITY, HELD_OUT_COMMUNITY):
            other = Matcher(load_catalog(other_catalog), lexicon)
            runs.append((other_catalog.parent.name, other, other_set))
    for name, run_matcher, path in runs:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        all_rows += rows if run_matcher is matcher else []
        if args.errors:
            print(f"== {name} / {path.name}", file=sys.stderr)
        r = evaluate(run_matcher, rows, args.errors)
        print(
            ROW.format(
                f"{name} / {path.name}",
                r["messages"],
                *(
                    f"{r[k]:.3f}"
                    for k in ("top1", "matched", "top3", "rejection", "wrong", "acts", "overall")
                ),
                *(f"{r[k]:.3f}" for k in ("median_ms", "p99_ms")),
            )
        )
    peak_after_build = rss_mb()

    if args.synthetic_items:
        big = synthetic_catalog(catalog, args.synthetic_items)
        start = time.perf_counter()
        big_matcher = Matcher(big, lexicon)
        big_build = time.perf_counter() - start
        r = evaluate(big_matcher, all_rows, False)
        label = f"timing on {args.synthetic_items} items"
        timing = (f"{r['median_ms']:.3f}", f"{r['p99_ms']:.3f}")
        print(ROW.format(label, r["messages"], "", "", "", "", "", "", "", *timing))
    print()
    print(f"index build: {build_s:.2f} s first (loads jieba's dictionary), {rebuild_s:.2f} s again")
    if args.synthetic_items:
        print(f"index build, {args.synthetic_items} items: {big_build:.2f} s")
    print(f"peak RSS: {rss_before:.0f} MB before the matcher, {peak_after_build:.0f} MB with it")


if __name__ == "__main__":
    main()
