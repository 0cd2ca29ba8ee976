"""Read a catalog YAML file and report *every* problem in it, each with its path.

Staff edit catalogs by hand. A loader that stops at the first mistake makes them
fix one typo per run; this one collects structural errors (pydantic), cross-reference
errors (unknown units, duplicate ids) and YAML-level errors (duplicate keys) in one
pass and prints them as ``items[3].unit: unknown unit 'polce' (line 42)``.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from catalog.model import Catalog
from catalog.schema import CatalogDocument

PathKey = tuple[str | int, ...]

DEMO_CATALOG = "jiedong.yaml"


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '(file)'}: {self.message}{where}"


class CatalogError(Exception):
    """The catalog is not valid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(set(problems))
        super().__init__(f"{source}: {len(self.problems)} problem(s)")

    def report(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def demo_catalog_path() -> Path:
    """The demo catalog for 解东社区 shipped inside the package."""
    ref = importlib.resources.files("catalog") / "demo" / DEMO_CATALOG
    return Path(str(ref))


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog file; raise :class:`CatalogError` listing all problems."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(str(path), [Problem(0, "", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(str(path), [Problem(0, "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise CatalogError(str(path), [Problem(0, "", exc.strerror or str(exc))]) from None
    return parse_catalog(text, source=str(path))


def parse_catalog(text: str, source: str = "<text>") -> Catalog:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(source, [Problem(line, "", f"not valid YAML: {reason}")]) from None

    lines: dict[PathKey, int] = {}
    problems: list[Problem] = []
    if root is not None:
        problems.extend(_walk_nodes(root, (), lines))
    if not isinstance(data, dict):
        problems.append(Problem(1, "", "expected a mapping with community, units and items"))
        raise CatalogError(source, problems)

    problems.extend(_cross_reference_problems(data, lines))
    try:
        document = CatalogDocument.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, lines))
        raise CatalogError(source, problems) from None
    if problems:
        raise CatalogError(source, problems)
    return Catalog(document, source=source)


# --- YAML-level checks -------------------------------------------------------------


def _walk_nodes(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Iterator[Problem]:
    """Record the line of every path and report duplicate mapping keys.

    PyYAML silently keeps the last of two equal keys; a catalog that says ``title``
    twice almost certainly lost something, so it is an error here.
    """
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield Problem(
                    key_node.start_mark.line + 1, _format_path((*path, key)), "duplicate key"
                )
            seen.add(key)
            yield from _walk_nodes(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield from _walk_nodes(child, (*path, index), lines)


# --- cross-reference checks ----------------------------------------------------------


def _cross_reference_problems(data: Mapping[str, Any], lines: dict[PathKey, int]) -> list[Problem]:
    """Checks that span records: duplicate ids and references to units that don't exist.

    They run on the raw data, tolerating wrong types elsewhere, so that a file with
    both a type error and an unknown unit reports both.
    """
    problems: list[Problem] = []

    def problem(path: PathKey, message: str) -> None:
        problems.append(Problem(_line_of(path, lines), _format_path(path), message))

    def records(key: str) -> list[tuple[int, Mapping[str, Any]]]:
        value = data.get(key)
        if not isinstance(value, list):
            return []
        return [(i, r) for i, r in enumerate(value) if isinstance(r, Mapping)]

    def check_unique(
        path: PathKey, entries: list[tuple[int, Mapping[str, Any]]], what: str
    ) -> set[str]:
        first: dict[str, int] = {}
        for index, record in entries:
            rid = record.get("id")
            if not isinstance(rid, str):
                continue
            if rid in first:
                first_at = _format_path((*path, first[rid]))
                problem(
                    (*path, index, "id"), f"duplicate {what} id '{rid}' (first used at {first_at})"
                )
            else:
                first[rid] = index
        return set(first)

    units_given = isinstance(data.get("units"), list)
    unit_ids = check_unique(("units",), records("units"), "unit")
    check_unique(("items",), records("items"), "item")
    check_unique(("topics",), records("topics"), "topic")
    community = data.get("community")
    if isinstance(community, Mapping) and isinstance(community.get("grids"), list):
        grids = [(i, g) for i, g in enumerate(community["grids"]) if isinstance(g, Mapping)]
        check_unique(("community", "grids"), grids, "grid")

    for index, item in records("items"):
        unit = item.get("unit")
        if isinstance(unit, str) and units_given and unit not in unit_ids:
            problem(("items", index, "unit"), f"unknown unit '{unit}'{_suggest(unit, unit_ids)}")
        co_units = item.get("co_units")
        if isinstance(co_units, list):
            for j, co in enumerate(co_units):
                if not isinstance(co, str):
                    continue
                if units_given and co not in unit_ids:
                    problem(
                        ("items", index, "co_units", j),
                        f"unknown unit '{co}'{_suggest(co, unit_ids)}",
                    )
                elif co == unit:
                    problem(("items", index, "co_units", j), f"'{co}' is already the lead unit")
    return problems


def _suggest(word: str, choices: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- pydantic errors --------------------------------------------------------------------

_CHANNEL_TAGS = {"wechat", "wecom_robot", "webhook", "log"}

_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field",
}


def _pydantic_problems(exc: ValidationError, lines: dict[PathKey, int]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _clean_loc(error["loc"])
        message = _MESSAGES.get(error["type"]) or str(error["msg"])
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = error.get("input")
        if error["type"] not in _MESSAGES and _is_scalar(value) and str(value) not in message:
            message += f" (got {value!r})"
        problems.append(Problem(_line_of(path, lines), _format_path(path), message))
    return problems


def _clean_loc(loc: tuple[str | int, ...]) -> PathKey:
    """Drop the parts pydantic adds for its own bookkeeping (union tags, dict keys)."""
    out: list[str | int] = []
    for part in loc:
        if part == "[key]":
            continue
        if (
            isinstance(part, str)
            and part in _CHANNEL_TAGS
            and len(out) >= 2
            and out[-2] == "channels"
            and isinstance(out[-1], int)
        ):
            continue
        out.append(part)
    return tuple(out)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool | dt.date | dt.time) or value is None


def _format_path(path: PathKey) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(path: PathKey, lines: dict[PathKey, int]) -> int:
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 0
