"""Where the matcher benchmarks find their labelled data.

The evaluation files (a reference catalog and the labelled dev set) are not part of
the repository: developer machines have them in ``../shared/eval`` beside it, a fresh
clone has nothing there. Without them the scripts say so in one line (what is missing,
where they looked, what they use instead) and measure what the repository has: the
demo catalog and the synthetic held-out set in ``bench/data/``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from catalog.loader import demo_catalog_path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO.parent / "shared"
HELDOUT = REPO / "bench" / "data" / "synthetic-heldout.jsonl"
"""Labelled messages written without seeing the dev set; its ids are the demo's."""
SECOND_COMMUNITY = (
    REPO / "bench" / "data" / "beiyuan" / "catalog.yaml",
    REPO / "bench" / "data" / "beiyuan" / "messages.jsonl",
)
"""A second community's catalog and messages, written without seeing the lexicon or
the dev set (bench/data/beiyuan/README.md): the gap between its figures and the dev
set's measures over-fitting to the reference community."""
HELD_OUT_COMMUNITY = (
    REPO / "bench" / "data" / "nanhai" / "catalog.yaml",
    REPO / "bench" / "data" / "nanhai" / "messages.jsonl",
)
"""A third community, written the same way and measured once the work on the first
two was done: held out (bench/data/nanhai/README.md). Nothing is tuned on it."""


def add_shared_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shared",
        type=Path,
        help="folder holding eval/catalog.yaml and eval/match-dev.jsonl "
        f"(default: {DEFAULT_SHARED})",
    )


@dataclass(frozen=True)
class EvalFiles:
    folder: Path
    """Where the evaluation files were looked for."""
    catalog: Path | None
    dev_set: Path | None

    def missing(self) -> list[str]:
        return [
            name
            for name, path in (("catalog.yaml", self.catalog), ("match-dev.jsonl", self.dev_set))
            if path is None
        ]


def eval_files(shared: Path | None) -> EvalFiles:
    """The evaluation files that exist; a ``--shared`` that holds none is an error."""
    folder = (shared or DEFAULT_SHARED) / "eval"
    catalog, dev_set = folder / "catalog.yaml", folder / "match-dev.jsonl"
    files = EvalFiles(
        folder,
        catalog if catalog.is_file() else None,
        dev_set if dev_set.is_file() else None,
    )
    if shared is not None and len(files.missing()) == 2:
        sys.exit(f"error: --shared {shared}: no eval/catalog.yaml or eval/match-dev.jsonl there")
    return files


def shown(path: Path) -> str:
    """A path as short as it can be said: relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def choose_catalog(given: Path | None, files: EvalFiles) -> Path:
    return given or files.catalog or demo_catalog_path()


def note_fallback(
    files: EvalFiles, *, catalog_given: bool, sets_given: bool, catalog: Path, sets: list[Path]
) -> None:
    """One line, first in the output (whose figures it qualifies), when something else is
    measured instead of the evaluation files."""
    missing = [
        name
        for name, given in (("catalog.yaml", catalog_given), ("match-dev.jsonl", sets_given))
        if name in files.missing() and not given
    ]
    if missing:
        used = f"{shown(catalog)} on {', '.join(shown(s) for s in sets)}"
        print(
            f"note: no {' or '.join(missing)} in {files.folder} "
            f"(--shared DIR points at them); measuring {used} instead"
        )
