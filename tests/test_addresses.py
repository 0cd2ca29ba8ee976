"""Addresses as people write them are one household: 3栋2单元501, 三栋二单元五零一,
3-2-501 … (``catalog.addresses``)."""

from __future__ import annotations

import pytest

from catalog.addresses import grid_of, parse_address, parse_parts
from catalog.schema import Grid


@pytest.mark.parametrize(
    "said",
    [
        "3栋2单元501",
        "3号楼2单元501室",
        "3幢2单元501号",
        "三栋二单元五零一",
        "三栋二单元五百零一",
        "3-2-501",
        "3—2—501",
        "3/2/501",
        "3栋-2-501",
        "３栋２单元５０１",
        "3 栋 2 单元 501",
        "3栋2单元5楼1号",
        "3#2单元501",
    ],
)
def test_ways_of_writing_one_room_give_one_key(said: str) -> None:
    address = parse_address(said)
    assert address is not None, said
    assert (address.key, address.label) == ("3-2-501", "3栋2单元501")


def test_an_estate_name_is_kept_apart_and_a_building_may_have_no_units() -> None:
    named = parse_address("解东小区3栋2单元501")
    assert named is not None and named.key == "解东:3-2-501" and named.bare_key == "3-2-501"
    no_units = parse_address("12栋501室")
    assert no_units is not None and no_units.key == "12--501" and no_units.label == "12栋501"
    lettered = parse_address("A座1单元1201")
    assert lettered is not None and lettered.key == "A-1-1201"


@pytest.mark.parametrize("said", ["", "3栋", "3栋2单元", "三楼那家", "解东小区", "501", "3-501"])
def test_what_names_no_room_is_not_an_address(said: str) -> None:
    assert parse_address(said) is None


def test_a_spreadsheet_s_columns() -> None:
    assert parse_parts("3栋", "2", "501室") == parse_address("3栋2单元501")
    assert parse_parts("三号楼", "二单元", "501") == parse_address("3-2-501")
    assert parse_parts("3", "", "0101") == parse_address("3栋101")
    assert parse_parts("3栋", "第二", "501") is None
    assert parse_parts("3栋", "2", "五楼") is None


def test_the_grid_of_a_building_from_the_grids_areas() -> None:
    grids = [
        Grid(id="g1", name="第一网格", areas=["1栋", "解东小区2-6栋"]),
        Grid(id="g2", name="第二网格", areas=["11栋", "七栋"]),
    ]
    assert grid_of(grids, "1栋") == "g1"
    assert grid_of(grids, "11栋") == "g2"
    assert grid_of(grids, "7栋") == "g2"
    assert grid_of(grids, "解东小区4栋") == "g1"
    assert grid_of(grids, "9栋") is None
