"""The catalog loader accepts real catalogs and reports every problem of a bad one.

Problems are provoked in tests/catalogs/qingshiwan.yaml, a hand-made catalog of a
fictional community (not the demo): the indexes and lines asserted below are its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from catalog.loader import CatalogError, demo_catalog_path, load_catalog, parse_catalog
from catalog.schema import Mode
from tests.conftest import QINGSHIWAN


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="bad.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def qingshiwan() -> dict:
    return yaml.safe_load(QINGSHIWAN.read_text(encoding="utf-8"))


def test_a_catalog_of_another_community_loads() -> None:
    catalog = load_catalog(QINGSHIWAN)
    assert catalog.community_id == "qingshiwan" and catalog.community_name == "青石湾社区"
    assert len(catalog.units) == 13
    assert len(catalog.items) == 27
    mediation = catalog.item("neighbour-mediation")
    assert mediation.mode is Mode.GROUP
    assert mediation.co_units == ["residents-committee", "estate-office", "police-post"]
    assert catalog.item("misconduct-report").confidential
    assert catalog.item("chronic-followup").mode is Mode.POINT  # the default
    assert "misconduct-report" not in {i.id for i in catalog.public_items()}
    assert catalog.categories[:3] == ["医疗卫生", "法律服务", "燃气用电"]
    assert len(catalog.categories) == 10
    assert [g.id for g in catalog.document.community.grids] == ["shangwan", "xiawan"]
    assert catalog.item("picture-book-reading").weekly[0].weekday == 6
    assert catalog.document.lexicon["巡堤"] == ["守堤", "守大堤"]


def test_demo_catalog_ships_in_the_package_and_is_valid() -> None:
    catalog = load_catalog(demo_catalog_path())
    assert catalog.community_name == "解东社区"
    # the community itself and the 14 contracted units of the news story
    assert len(catalog.units) >= 15
    assert len(catalog.items) >= 48
    assert any(i.slots for i in catalog.items), "the demo shows dated slots"
    assert any(i.weekly for i in catalog.items), "the demo shows weekly classes"
    assert any(i.form for i in catalog.items), "the demo shows custom forms"
    assert catalog.document.topics and catalog.document.lexicon


def test_broken_catalog_lists_every_problem_with_its_path(qingshiwan: dict) -> None:
    items = qingshiwan["items"]
    items[3]["unit"] = "helth-station"
    items[8]["co_units"] = ["youth-league", 7]
    items[10]["title"] = "  "
    items[21]["id"] = items[20]["id"]
    items[22]["confidential"] = "maybe"
    items[24]["keyword"] = ["typo"]
    del items[25]["category"]
    qingshiwan["units"][2]["id"] = qingshiwan["units"][1]["id"]

    found = problems_of(yaml.safe_dump(qingshiwan, allow_unicode=True))
    text = "\n".join(found)
    assert "items[3].unit: unknown unit 'helth-station' (did you mean 'health-station'?)" in text
    assert "items[8].co_units[0]: unknown unit 'youth-league'" in text
    assert "items[8].co_units[1]: must be text, but YAML read it as 7: put it in quotes" in text
    assert "items[10].title: must not be empty" in text
    assert "items[21].id: duplicate item id 'consumer-complaint' (first used at items[20])" in text
    assert "items[22].confidential: Input should be a valid boolean" in text
    assert "items[24].keyword: unknown field" in text
    assert "items[25].category: required field is missing" in text
    assert "units[2].id: duplicate unit id 'justice-office' (first used at units[1])" in text
    # the lead and the co-unit references to 'police-post' now name no unit
    assert "items[23].unit: unknown unit 'police-post'" in text
    assert "items[5].co_units[2]: unknown unit 'police-post'" in text
    assert all(": " in p for p in found)


def test_problems_carry_the_line_of_the_file() -> None:
    text = QINGSHIWAN.read_text(encoding="utf-8").replace(
        "    unit: disability-fed\n", "    unit: disability-fde\n", 1
    )
    [problem] = problems_of(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "disability-fde" in row)
    assert line > 100  # deep in the file, not the first lines
    assert problem.endswith(f"(line {line})")
    assert problem.startswith("items[")


def test_duplicate_yaml_keys_are_reported_not_silently_merged() -> None:
    text = QINGSHIWAN.read_text(encoding="utf-8").replace(
        "    title: 普法讲座\n", "    title: 普法讲座\n    title: 普法课堂\n", 1
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
    assert item.slots[0].capacity is None


def test_version_ignores_formatting_but_not_content() -> None:
    text = QINGSHIWAN.read_text(encoding="utf-8")
    base = parse_catalog(text).version
    # the same content written by another tool: block style, sorted keys, no comments
    reformatted = "# edited by staff\n" + yaml.safe_dump(
        yaml.safe_load(text), allow_unicode=True, default_flow_style=False, sort_keys=True
    )
    assert parse_catalog(reformatted).version == base
    changed = text.replace("title: 普法讲座", "title: 普法讲座（民法典专场）")
    assert parse_catalog(changed).version != base


def test_version_ignores_the_order_of_lexicon_entries() -> None:
    text = QINGSHIWAN.read_text(encoding="utf-8")
    first, second = "  巡堤: [守堤, 守大堤]\n", "  江堤: [大堤, 河堤]\n"
    swapped = text.replace(first + second, second + first)
    assert swapped != text
    assert parse_catalog(swapped).version == parse_catalog(text).version


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
