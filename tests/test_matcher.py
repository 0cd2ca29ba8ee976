"""The matcher: normalisation, the three decisions, isolation between catalogs, reloads."""

from __future__ import annotations

import pytest

from catalog.lexicon import Lexicon, shipped_lexicon
from catalog.live import LiveCatalog
from catalog.loader import load_catalog, parse_catalog
from catalog.matcher import Matcher
from catalog.normalize import normalize
from catalog.segment import base_tokenizer, search_tokens
from catalog.thresholds import Thresholds
from tests.conftest import REFERENCE_CATALOG

SMALL = """
community: {id: c1, name: 测试社区}
units:
  - {id: property, name: 物业服务中心, kind: 企业}
  - {id: clinic, name: 卫生服务中心, kind: 事业单位}
  - {id: bank, name: 银行, kind: 企业}
items:
  - id: repair
    title: 水电维修
    unit: property
    category: 物业服务
    keywords: [漏水, 水管, 跳闸]
    description: 师傅上门维修水管、电路。
  - id: health-talk
    title: 健康讲座
    unit: clinic
    category: 健康
    keywords: [养生讲座]
    description: 医生讲解慢性病预防。
  - id: money-talk
    title: 理财讲座
    unit: bank
    category: 金融
    keywords: [理财知识]
    description: 银行讲解存款理财。
lexicon:
  漏水: [滴水, 渗水]
"""


@pytest.fixture(scope="module")
def small() -> Matcher:
    return Matcher(parse_catalog(SMALL), Lexicon(out_of_scope=frozenset({"宠物"})))


@pytest.fixture(scope="module")
def reference() -> Matcher:
    return Matcher(load_catalog(REFERENCE_CATALOG))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("請問下週的健康講座在哪裡？", "请问下周的健康讲座在哪里"),  # traditional → simplified
        ("５栋４０１ ＡＰＰ", "5栋401 app"),  # full-width → half-width, lower case
        ("谢谢👍👍，收到！", "谢谢 收到"),  # emoji and punctuation → spaces
        ("🌹🌹🌹", ""),
    ],
)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_confident_match_uses_the_catalog_lexicon(small: Matcher) -> None:
    result = small.match("楼上天天往我家滴水")  # 滴水 is linked to 漏水 in the catalog
    assert result.decision == "matched" and result.item == "repair"
    assert 0.0 < result.score <= 1.0
    assert result.candidates[0].item == "repair"


def test_equally_likely_items_are_offered_as_choices(reference: Matcher) -> None:
    result = reference.match("讲座什么时候开")  # three units give lectures
    assert result.decision == "ambiguous" and result.item is None
    assert {c.item for c in result.candidates} == {
        "health-lecture",
        "law-lecture",
        "elderly-fraud-prevention",
    }


@pytest.mark.parametrize("text", ["今天天气真好", "", "🌹🌹", "哈哈哈哈", "在吗"])
def test_messages_asking_for_nothing_match_nothing(small: Matcher, text: str) -> None:
    result = small.match(text)
    assert result.decision == "none" and result.item is None


def test_off_catalog_requests_are_declined_even_with_catalog_words(small: Matcher) -> None:
    assert small.match("水管漏水了").decision == "matched"
    assert small.match("宠物店的水管漏水了谁修").decision == "none"


def test_the_issue_examples(reference: Matcher) -> None:
    assert reference.match("楼上老往我家滴水").item == "home-repair"
    assert reference.match("我妈走不动了能不能让医生来家里").item == "home-health-visit"


@pytest.mark.parametrize(
    ("slip", "item"),
    [("社宝卡丢了怎么补", "social-security-card"), ("疫描在哪里打", "vaccination-info")],
)
def test_homophones_from_voice_input_still_match(reference: Matcher, slip: str, item: str) -> None:
    result = reference.match(slip)
    assert result.candidates[0].item == item
    assert result.decision in ("matched", "ambiguous")


def test_search_mode_index_matches_parts_of_long_titles(reference: Matcher) -> None:
    # 社保卡上门代办 is one dictionary word, but 社保卡 alone must still find it.
    result = reference.match("社保卡")
    assert result.candidates[0].item == "social-security-card"
    assert result.decision in ("matched", "ambiguous")


def test_catalogs_do_not_leak_into_each_other() -> None:
    invented = SMALL.replace("title: 水电维修", "title: 蓝莓果冻课堂").replace(
        "keywords: [漏水, 水管, 跳闸]", "keywords: [蓝莓果冻]"
    )
    a = Matcher(parse_catalog(invented), Lexicon())
    b = Matcher(parse_catalog(SMALL), Lexicon())
    # The title is one word for the catalog that has it, and unknown to the other.
    assert ("蓝莓果冻课堂", 0, 6) in search_tokens(a._tokenizer, "蓝莓果冻课堂")
    assert ("蓝莓果冻课堂", 0, 6) not in search_tokens(b._tokenizer, "蓝莓果冻课堂")
    assert a.match("蓝莓果冻课堂").item == "repair"
    assert b.match("蓝莓果冻课堂").decision == "none"
    # Catalog words live in the catalog's overlay, never in the shared dictionary.
    assert "蓝莓果冻课堂" not in base_tokenizer().FREQ


def test_json_shape(reference: Matcher) -> None:
    data = reference.match("讲座什么时候开").as_json()
    assert list(data) == ["text", "decision", "item", "score", "candidates"]
    assert all(set(c) == {"item", "score"} for c in data["candidates"])  # type: ignore[union-attr]


async def test_reloading_a_changed_catalog_rebuilds_the_matcher() -> None:
    live = await LiveCatalog.load(parse_catalog(SMALL))
    first = live.matcher
    assert live.matcher.match("妈妈夜校怎么报名").decision == "none"

    assert not await live.replace(parse_catalog(SMALL))  # same version: nothing rebuilt
    assert live.matcher is first

    extended = SMALL.replace(
        "lexicon:",
        "  - {id: night-school, title: 妈妈夜校, unit: clinic, category: 家庭, keywords: [夜校]}\n"
        "lexicon:",
    )
    assert await live.replace(parse_catalog(extended))
    assert live.matcher is not first and live.current.has_item("night-school")
    assert live.matcher.match("妈妈夜校怎么报名").item == "night-school"
    assert first.match("妈妈夜校怎么报名").decision == "none"  # the old index is untouched


async def test_a_catalog_version_is_indexed_once_per_process() -> None:
    """Communities sharing a catalog, or a process reloading one it had, reuse the
    index; other thresholds or other content get their own."""
    one = await LiveCatalog.load(parse_catalog(SMALL))
    two = await LiveCatalog.load(parse_catalog(SMALL))
    assert one.matcher is two.matcher
    strict = await LiveCatalog.load(parse_catalog(SMALL), Thresholds(matched=0.9))
    assert strict.matcher is not one.matcher and strict.matcher.thresholds.matched == 0.9
    other = await LiveCatalog.load(parse_catalog(SMALL.replace("title: 理财讲座", "title: 理财课")))
    assert other.matcher is not one.matcher


def test_the_shipped_lexicon_is_rich_and_clean() -> None:
    lexicon = shipped_lexicon()
    assert len(lexicon.concepts) >= 100
    assert sum(len(v) for v in lexicon.concepts.values()) >= 1000
    assert len(lexicon.out_of_scope) >= 100
    for canonical, variants in lexicon.concepts.items():
        assert canonical and canonical not in variants
