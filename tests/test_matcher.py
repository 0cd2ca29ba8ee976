"""The matcher: normalisation, the three decisions, isolation between catalogs, reloads.

Its decisions are checked on the demo catalog of 解东社区 (the examples of the issue;
its local words are in its own ``lexicon:`` section) and on 青石湾社区
(tests/catalogs/qingshiwan.yaml), a community of other units, items and words: a
matcher that only works on the catalog it was tuned on fails there."""

from __future__ import annotations

import pytest

from catalog.lexicon import Lexicon, shipped_lexicon
from catalog.live import LiveCatalog
from catalog.loader import load_catalog, parse_catalog
from catalog.matcher import Matcher
from catalog.normalize import normalize
from catalog.segment import base_tokenizer, search_tokens
from catalog.thresholds import Thresholds
from tests.conftest import DEMO_CATALOG, QINGSHIWAN

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
def demo() -> Matcher:
    return Matcher(load_catalog(DEMO_CATALOG))


@pytest.fixture(scope="module")
def qingshiwan() -> Matcher:
    return Matcher(load_catalog(QINGSHIWAN))


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


def test_equally_likely_items_are_offered_as_choices(demo: Matcher) -> None:
    result = demo.match("讲座什么时候开")  # three units give lectures
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


def test_the_issue_examples(demo: Matcher) -> None:
    assert demo.match("楼上老往我家滴水").item == "home-repair"
    assert demo.match("我妈走不动了能不能让医生来家里").item == "home-health-visit"


@pytest.mark.parametrize(
    ("slip", "item"),
    [("社宝卡丢了怎么补", "social-security-card"), ("疫描在哪里打", "vaccination-info")],
)
def test_homophones_from_voice_input_still_match(demo: Matcher, slip: str, item: str) -> None:
    result = demo.match(slip)
    assert result.candidates[0].item == item
    assert result.decision in ("matched", "ambiguous")


def test_search_mode_index_matches_parts_of_long_titles(demo: Matcher) -> None:
    # 社保卡上门代办 is one dictionary word, but 社保卡 alone must still find it.
    result = demo.match("社保卡")
    assert result.candidates[0].item == "social-security-card"
    assert result.decision in ("matched", "ambiguous")


# 青石湾社区: residents' own words, none of them a sentence of the catalog file.
EVERYDAY_REQUESTS = [
    ("厨房里一股煤气味", "gas-inspection"),
    ("卫生间下水道堵住了", "pipe-repair"),
    ("楼上天天往我家滴水", "pipe-repair"),
    ("电梯又卡在三楼不动了", "lift-fault"),
    ("我爸血压老是高，医生能定期来看看吗", "chronic-followup"),
    ("想借个轮椅给我妈用几天", "mobility-aid-loan"),
    ("老伴想学写毛笔字", "calligraphy-class"),
    ("菜市场那家卖肉的缺斤少两", "consumer-complaint"),
    ("孩子上学要开居住证明", "residence-certificate"),
    ("家里突然没电了整栋楼都黑了", "power-outage"),
    ("我想学用手机跟孙子视频", "smartphone-class"),
    ("楼上邻居半夜吵得睡不着", "neighbour-mediation"),
    ("腿摔伤了需要护士来换药", "home-nursing"),
    ("想给孩子报名周六的绘本课", "picture-book-reading"),
]


@pytest.mark.parametrize(("text", "item"), EVERYDAY_REQUESTS)
def test_everyday_requests_match_in_another_community(
    qingshiwan: Matcher, text: str, item: str
) -> None:
    result = qingshiwan.match(text)
    assert (result.decision, result.item) == ("matched", item), result.as_json()


def test_equally_likely_items_are_offered_as_choices_in_another_community(
    qingshiwan: Matcher,
) -> None:
    result = qingshiwan.match("讲座什么时候开")  # three units give lectures here too
    assert result.decision == "ambiguous" and result.item is None
    assert {c.item for c in result.candidates} == {"tcm-talk", "law-talk", "gas-safety-talk"}


@pytest.mark.parametrize(
    ("slip", "item"),
    [("然气表好像坏了", "gas-inspection"), ("残急证怎么办", "disability-certificate")],
)
def test_homophones_match_in_another_community(qingshiwan: Matcher, slip: str, item: str) -> None:
    result = qingshiwan.match(slip)
    assert result.candidates[0].item == item
    assert result.decision in ("matched", "ambiguous")


@pytest.mark.parametrize(
    ("part", "item"), [("晨练班", "taichi-class"), ("疏通维修", "pipe-repair")]
)
def test_parts_of_long_titles_match_in_another_community(
    qingshiwan: Matcher, part: str, item: str
) -> None:
    # 太极拳晨练班 and 管道疏通维修 are words of this catalog; their parts still find them.
    result = qingshiwan.match(part)
    assert result.candidates[0].item == item
    assert result.decision in ("matched", "ambiguous")


@pytest.mark.parametrize(
    "text", ["你们社区有教钢琴的老师吗，孩子想学琴", "帮我叫个外卖", "明天会下雨吗", "在吗"]
)
def test_requests_for_nothing_offered_match_nothing_in_another_community(
    qingshiwan: Matcher, text: str
) -> None:
    assert qingshiwan.match(text).decision == "none"


def test_a_catalogs_own_lexicon_teaches_its_local_words() -> None:
    text = QINGSHIWAN.read_text(encoding="utf-8")
    entry = "  巡堤: [守堤, 守大堤]\n"
    assert entry in text
    with_entry = Matcher(parse_catalog(text))
    without_entry = Matcher(parse_catalog(text.replace(entry, "")))
    assert with_entry.match("我也想去守堤").item == "flood-watch"
    assert without_entry.match("我也想去守堤").decision == "none"


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


def test_json_shape(demo: Matcher) -> None:
    data = demo.match("讲座什么时候开").as_json()
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
