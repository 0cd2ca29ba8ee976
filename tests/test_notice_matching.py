"""Which messages a live notice answers (``catalog.notices``): the subject read from the
notice's own words, and the place from the resident's building or grid."""

from __future__ import annotations

import pytest

from catalog.notices import NoticeFacts, Place, Said, answering, place_of, same_building

WATER = NoticeFacts(text="5栋今日停水，预计18点恢复", building="5栋")


@pytest.mark.parametrize("said", ["家里没水了", "水龙头不出水", "什么时候来水", "5栋停水了吗"])
def test_a_water_cut_answers_every_way_of_saying_there_is_no_water(said: str) -> None:
    assert answering([WATER], Said(said), Place(building="解东小区5栋2单元")) == [WATER]


@pytest.mark.parametrize("said", ["家里没电了", "楼上渗水下来", "马桶堵了", "想报名义诊"])
def test_other_subjects_are_not_answered_with_it(said: str) -> None:
    assert answering([WATER], Said(said), Place(building="5栋")) == []


@pytest.mark.parametrize("building", ["15栋", "6栋", "铁佛塘小区5栋"])
def test_other_buildings_are_not_told(building: str) -> None:
    notice = NoticeFacts(text="解东小区5栋今日停水", building="解东小区5栋")
    assert answering([notice], Said("家里没水了"), Place(building=building)) == []


def test_a_building_in_chinese_numerals_is_the_same_building() -> None:
    assert same_building("5栋", "五栋三单元") and same_building("12号楼", "十二栋")
    assert not same_building("1栋", "11栋")


def test_a_resident_whose_building_is_unknown_is_not_told_a_building_notice() -> None:
    assert answering([WATER], Said("家里没水了"), Place()) == []


def test_a_grid_notice_reaches_the_grid_and_a_community_notice_everyone() -> None:
    grid = NoticeFacts(text="第一网格明天上午停电检修", grid_key="g1")
    everyone = NoticeFacts(text="全社区今晚8点到10点停气")
    assert answering([grid], Said("家里没电了"), Place(grid_key="g1")) == [grid]
    assert answering([grid], Said("家里没电了"), Place(grid_key="g2")) == []
    assert answering([everyone], Said("燃气打不着火"), Place()) == [everyone]


def test_keywords_and_the_item_staff_chose_widen_the_subject() -> None:
    lift = NoticeFacts(text="8栋今天例行保养", building="8栋", keywords=("上不了楼",))
    assert answering([lift], Said("老人上不了楼"), Place(building="8栋")) == [lift]
    repair = NoticeFacts(text="8栋今天例行保养", building="8栋", item_key="public-facility-repair")
    said = Said("门禁刷不开", items=("public-facility-repair",))
    assert answering([repair], said, Place(building="8栋")) == [repair]


def test_a_building_named_in_the_message_wins_over_the_one_given_before() -> None:
    known = Place(grid_key="g2", building="7栋")
    place = place_of("5栋停水了吗", known, lambda text: "g1")
    assert place == Place(grid_key="g1", building="5栋停水了吗")
    assert answering([WATER], Said("5栋停水了吗"), place) == [WATER]
    assert place_of("家里没水了", known, lambda text: None) == known
