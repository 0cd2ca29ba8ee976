"""The catalog loader accepts the reference file and reports every problem of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from catalog.loader import CatalogError, demo_catalog_path, load_catalog, parse_catalog
from catalog.schema import Mode
from tests.conftest import REFERENCE_CATALOG


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="bad.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def reference() -> dict:
    return yaml.safe_load(REFERENCE_CATALOG.read_text(encoding="utf-8"))


def test_reference_catalog_loads_unchanged() -> None:
    catalog = load_catalog(REFERENCE_CATALOG)
    assert catalog.community_id == "jiedong"
    assert len(catalog.units) == 15
    assert len(catalog.items) == 48
    mediation = catalog.item("dispute-mediation")
    assert mediation.mode is Mode.GROUP
    assert mediation.co_units == ["police", "urban-mgmt", "dongxi-lane", "property"]
    assert catalog.item("integrity-report").confidential
    assert catalog.item("free-clinic").mode is Mode.POINT  # the default
    assert "integrity-report" not in {i.id for i in catalog.public_items()}
    assert catalog.categories[:3] == ["健康医疗", "平安法治", "城市管理"]


def test_demo_catalog_ships_in_the_package_and_is_valid() -> None:
    catalog = load_catalog(demo_catalog_path())
    assert catalog.community_name == "解东社区"
    # the community itself and the 14 contracted units of the news story
    assert len(catalog.units) >= 15
    assert len(catalog.items) >= 48
    assert any(i.sessions for i in catalog.items), "the demo shows dated sessions"
    assert any(i.weekly for i in catalog.items), "the demo shows weekly classes"
    assert any(i.form for i in catalog.items), "the demo shows custom forms"
    assert catalog.document.topics and catalog.document.lexicon


def test_broken_catalog_lists_every_problem_with_its_path(reference: dict) -> None:
    items = reference["items"]
    items[3]["unit"] = "polce"
    items[8]["co_units"] = ["college-volunteer", 7]
    items[10]["title"] = "  "
    items[21]["id"] = items[20]["id"]
    items[41]["confidential"] = "maybe"
    items[42]["keyword"] = ["typo"]
    del items[43]["category"]
    reference["units"][2]["id"] = reference["units"][1]["id"]

    found = problems_of(yaml.safe_dump(reference, allow_unicode=True))
    text = "\n".join(found)
    assert "items[3].unit: unknown unit 'polce' (did you mean 'police'?)" in text
    assert "items[8].co_units[0]: unknown unit 'college-volunteer'" in text
    assert "items[8].co_units[1]: must be text, but YAML read it as 7: put it in quotes" in text
    assert "items[10].title: must not be empty" in text
    assert f"items[21].id: duplicate item id '{items[20]['id']}' (first used at items[20])" in text
    assert "items[41].confidential: Input should be a valid boolean" in text
    assert "items[42].keyword: unknown field" in text
    assert "items[43].category: required field is missing" in text
    assert "units[2].id: duplicate unit id 'police' (first used at units[1])" in text
    # items whose unit was 'law-firm' now point at a unit id that no longer exists
    assert any(p.startswith("items[") and "unknown unit 'law-firm'" in p for p in found)
    assert all(": " in p for p in found)


def test_problems_carry_the_line_of_the_file() -> None:
    text = REFERENCE_CATALOG.read_text(encoding="utf-8").replace(
        "    unit: fire-brigade\n", "    unit: fire-brigde\n", 1
    )
    [problem] = problems_of(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "fire-brigde" in row)
    assert problem.endswith(f"(line {line})")
    assert problem.startswith("items[")


def test_duplicate_yaml_keys_are_reported_not_silently_merged() -> None:
    text = REFERENCE_CATALOG.read_text(encoding="utf-8").replace(
        "    title: 合同审查\n", "    title: 合同审查\n    title: 合同起草\n", 1
    )
    assert any("title: duplicate key" in p for p in problems_of(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("community: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping with community, units and items"),
        ("", "expected a mapping"),
        ("community: {id: x, name: X}\nunits: []\n", "items: required field is missing"),
        (
            "community: {id: Bad Id!, name: X}\nunits: []\nitems: []\n",
            "community.id: String should match pattern",
        ),
        (
            "community: {id: x, name: X, timezone: Mars/Base}\nunits: []\nitems: []\n",
            "community.timezone: unknown time zone 'Mars/Base'",
        ),
    ],
)
def test_structural_problems_are_explained(text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(text)), problems_of(text)


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "nope.yaml")
    assert [str(p) for p in caught.value.problems] == ["(file): file not found"]


MINIMAL = """
community: {id: c1, name: 测试社区}
units:
  - {id: u1, name: 单位一, kind: 机关}
  - {id: u2, name: 单位二, kind: 企业}
items:
  - id: class
    title: 夜校
    unit: u1
    co_units: [u2]
    mode: 点单式
    category: 教育
    weekly:
      - {weekday: 周二, start: "19:30", end: "21:00", capacity: 30}
    sessions:
      - {id: s1, start: "2026-12-05 09:00", end: "2026-12-05 08:00"}
    form:
      - {id: size, kind: choice, ask: 要哪一种, choices: [大]}
"""


def test_extended_fields_are_validated() -> None:
    found = problems_of(MINIMAL)
    assert any(p.startswith("items[0].sessions[0]: end must be after start") for p in found)
    assert any(p.startswith("items[0].form[0]: a choice question needs") for p in found)


def test_extended_fields_load_and_chinese_weekdays_are_understood() -> None:
    text = MINIMAL.replace('end: "2026-12-05 08:00"', 'end: "2026-12-05 11:00"').replace(
        "choices: [大]", "choices: [大, 小]"
    )
    item = parse_catalog(text).item("class")
    assert item.mode is Mode.POINT
    assert item.weekly[0].weekday == 2
    assert item.sessions[0].capacity is None


def test_version_ignores_formatting_but_not_content() -> None:
    text = REFERENCE_CATALOG.read_text(encoding="utf-8")
    base = parse_catalog(text).version
    # the same content written by another tool: block style, sorted keys, no comments
    reformatted = "# edited by staff\n" + yaml.safe_dump(
        yaml.safe_load(text), allow_unicode=True, default_flow_style=False, sort_keys=True
    )
    assert parse_catalog(reformatted).version == base
    changed = text.replace("title: 合同审查", "title: 合同审查服务")
    assert parse_catalog(changed).version != base


def test_yaml_type_guesses_are_caught_with_advice() -> None:
    text = """
community: {id: c1, name: X}
units: []
items:
  - {id: 2026-12-12, title: T, unit: ghost, category: C}
  - id: class
    title: 夜校
    unit: ghost
    category: C
    weekly: [{weekday: 2, start: 19:30, end: "21:00"}]
"""
    found = problems_of(text)
    assert any(p.startswith("items[0].id: must be text, but YAML read it as") for p in found)
    assert any(
        p.startswith('items[1].weekly[0].start: write times in quotes, e.g. "19:30"') for p in found
    )
    # an empty unit list still means every unit reference is unknown
    assert sum("unknown unit 'ghost'" in p for p in found) == 2
