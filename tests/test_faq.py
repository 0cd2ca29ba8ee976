"""Answers to residents' questions about the community (the catalog's ``faq:``).

What a resident notices: a question asked in their own words gets the catalog's
answer; a request, a greeting or a question the catalog cannot answer gets no answer
from it (wrong office hours are worse than "I'll ask the staff"). What staff notice:
mistakes in a ``faq:`` section are reported with their place in the file.

The questions below are not the wordings written in the catalogs: they are what
residents might send instead. They run on the demo catalog of 解东社区 and on
tests/catalogs/qingshiwan.yaml, a community the matching was not written for."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.faq import FaqIndex
from catalog.live import LiveCatalog
from catalog.loader import CatalogError, load_catalog, parse_catalog
from catalog.matcher import Matcher
from catalog.model import Catalog
from storage.repositories.catalog import import_catalog, live_catalog
from tests.conftest import DEMO_CATALOG, QINGSHIWAN

PLAIN = """
community: {id: c1, name: 测试社区}
units:
  - {id: office, name: 测试社区居委会, kind: 社区}
  - {id: property, name: 物业服务中心, kind: 企业}
items:
  - {id: repair, title: 水电维修, unit: property, category: 物业服务, keywords: [漏水, 跳闸]}
  - {id: proof, title: 证明开具, unit: office, category: 社区事务, keywords: [居住证明]}
"""
"""A catalog as they were written before FAQ entries existed."""

PLAIN_VERSION = "553239bcdc5747ab"
"""Its version as computed before FAQ entries existed (and stored in databases)."""

WITH_FAQ = PLAIN.replace("name: 测试社区}", 'name: 测试社区, duty_phone: "0773-1234567"}') + (
    """faq:
  - id: hours
    unit: office
    questions: [社区几点上班, 居委会什么时候有人]
    answer: 周一到周五上午8:30-12:00、下午2:30-5:30办公。
  - id: proof-howto
    unit: office
    questions: [开居住证明要带什么]
    answer: 带身份证和户口本到社区办事大厅办理。
"""
)


def problems_of(text: str) -> str:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="bad.yaml")
    return caught.value.report()


def with_faq(entries: str) -> str:
    return PLAIN + "faq:\n" + entries


@pytest.fixture(scope="module")
def demo() -> Matcher:
    return Matcher(load_catalog(DEMO_CATALOG))


@pytest.fixture(scope="module")
def qingshiwan() -> Matcher:
    return Matcher(load_catalog(QINGSHIWAN))


# --- the catalog format -------------------------------------------------------------


def test_faq_and_duty_phone_load_from_the_demo_catalog() -> None:
    catalog = load_catalog(DEMO_CATALOG)
    assert catalog.document.community.duty_phone == "0773-2800100"
    faq = catalog.document.faq
    assert 15 <= len(faq) <= 20
    assert all(3 <= len(f.questions) <= 6 for f in faq)
    assert all(len(f.answer) <= 600 for f in faq)
    units = {u.id for u in catalog.units}
    assert {f.unit for f in faq} <= units


def test_a_catalog_without_faq_keeps_the_version_it_had_before() -> None:
    """Versions are stored and compared by every process: new optional fields must
    not give every existing catalog a new one."""
    catalog = parse_catalog(PLAIN)
    assert catalog.version == PLAIN_VERSION
    assert catalog.document.faq == [] and catalog.document.community.duty_phone is None
    assert parse_catalog(WITH_FAQ).version != PLAIN_VERSION


def test_faq_and_duty_phone_survive_the_database_snapshot() -> None:
    catalog = parse_catalog(WITH_FAQ)
    again = Catalog.from_json(catalog.to_json())
    assert again.version == catalog.version
    assert again.document.community.duty_phone == "0773-1234567"
    assert [f.id for f in again.document.faq] == ["hours", "proof-howto"]


async def test_faq_is_in_the_live_catalog_after_an_import(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    catalog = load_catalog(QINGSHIWAN)
    async with sessionmaker.begin() as session:
        await import_catalog(session, catalog, source="test")
    async with sessionmaker() as session:
        live = await live_catalog(session, "qingshiwan")
    assert live is not None and live.version == catalog.version
    assert live.document.faq == catalog.document.faq
    answer = Matcher(live).match_faq("物业的联系电话")
    assert answer is not None and "0551-6300107" in answer.faq.answer


def test_duplicate_faq_id_names_the_entry_and_the_first_one() -> None:
    report = problems_of(
        with_faq(
            "  - {id: hours, questions: [几点上班], answer: 八点半}\n"
            "  - {id: hours, questions: [几点下班], answer: 五点半}\n"
        )
    )
    assert "faq[1].id: duplicate faq id 'hours' (first used at faq[0]) (line 11)" in report


def test_a_faq_id_may_not_be_an_item_id() -> None:
    report = problems_of(with_faq("  - {id: repair, questions: [怎么报修], answer: 找物业}\n"))
    assert "faq[0].id: 'repair' is already the id of items[0]" in report


def test_unknown_faq_unit_names_the_unit_and_suggests_one() -> None:
    report = problems_of(
        with_faq("  - {id: hours, questions: [几点上班], answer: 八点半, unit: offce}\n")
    )
    assert "faq[0].unit: unknown unit 'offce' (did you mean 'office'?) (line 10)" in report


def test_a_faq_entry_needs_a_question_and_an_answer() -> None:
    report = problems_of(
        with_faq(
            "  - {id: hours, questions: [], answer: 八点半}\n"
            "  - {id: phone, questions: ['  '], answer: 找物业}\n"
            "  - {id: where, questions: [在哪]}\n"
        )
    )
    assert "faq[0].questions: needs at least one question" in report
    assert "faq[1].questions[0]: must not be empty" in report
    assert "faq[2].answer: required field is missing" in report


def test_problems_in_faq_and_elsewhere_are_listed_together() -> None:
    text = with_faq(
        "  - {id: hours, questions: [几点上班], answer: 八点半, unit: nobody}\n"
        "  - {id: phone, questions: [电话], answer: 找物业, extra: 1}\n"
    ).replace("keywords: [漏水, 跳闸]", "keywords: [漏水, 跳闸], keyword: [x]")
    report = problems_of(text)
    assert "items[0].keyword: unknown field" in report
    assert "faq[0].unit: unknown unit 'nobody'" in report
    assert "faq[1].extra: unknown field" in report


def test_a_long_answer_is_refused_without_being_repeated() -> None:
    report = problems_of(
        with_faq(f"  - {{id: hours, questions: [几点上班], answer: {'长' * 601}}}\n")
    )
    assert "faq[0]: answer is 601 characters long; keep it to 600" in report
    assert "长长长" not in report


@pytest.mark.parametrize("phone", ["待定", "有"])
def test_duty_phone_must_be_a_phone_number(phone: str) -> None:
    text = PLAIN.replace("name: 测试社区}", f"name: 测试社区, duty_phone: {phone}}}")
    report = problems_of(text)
    assert "community.duty_phone: must be a phone number" in report
    assert f"(got '{phone}')" in report


def test_faq_reaches_the_console_download_unchanged() -> None:
    """The console offers the live catalog as YAML (defaults left out): the FAQ must
    come back as it went in."""
    catalog = parse_catalog(WITH_FAQ)
    data = catalog.document.model_dump(mode="json", exclude_defaults=True)
    assert parse_catalog(yaml.safe_dump(data, allow_unicode=True)).version == catalog.version


# --- answering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "faq_id"),
    [
        ("居委会几点开门", "office-hours"),  # the catalog says 社区几点上班
        ("居委会上午几点开始办公", "office-hours"),
        ("开住址证明要准备啥", "residence-proof"),
        ("开个居住证明得带哪些证件", "residence-proof"),
        ("家里没收入，低保能批吗", "dibao"),
        ("我奶奶满八十了高龄补贴怎么申请", "longevity-allowance"),
        ("想参加社区志愿者要什么条件", "volunteer-join"),
        ("倒垃圾有规定时间吗", "garbage-times"),
        ("电瓶车能放家里充电吗", "ebike-charging"),
        ("物业晚上值班电话多少", "property-contact"),
        ("电梯卡住不动了找谁修", "elevator-fault"),
        ("停电通知在哪看", "outage-notice"),
        ("退休党员的组织关系怎么转进来", "party-transfer"),
        ("流感疫苗要预约吗", "vaccine-where"),
        ("老年优待证要带什么去办", "senior-card"),
        ("居民医保交费时间", "medical-insurance"),
        ("捡到一张身份证该交给谁", "lost-and-found"),
        ("老年活动室晚上开到几点", "activity-room"),
    ],
)
def test_demo_questions_in_residents_words_get_the_answer(
    demo: Matcher, question: str, faq_id: str
) -> None:
    found = demo.match_faq(question)
    assert found is not None, question
    assert found.faq.id == faq_id
    assert found.faq in demo.catalog.document.faq  # the entry, with the answer to send
    assert 0.5 <= found.score <= 1


@pytest.mark.parametrize(
    ("question", "faq_id"),
    [
        ("居委会周末有人吗", "office-hours"),  # the catalog says 社区周六有人吗
        ("社区办事大厅在什么地方", "office-address"),
        ("住址证明需要什么材料", "residence-proof-howto"),
        ("半夜找物业打什么号码", "estate-contact"),
        ("发大水住一楼要不要转移", "flood-season"),
        ("煤气费怎么交", "gas-bill"),
        ("图书馆星期一开门吗", "library-hours"),
        ("老年大学一学期多少钱", "elder-college-signup"),
        ("电动车可以推上楼充电吗", "ebike-charging"),
    ],
)
def test_questions_of_another_community_get_its_answer(
    qingshiwan: Matcher, question: str, faq_id: str
) -> None:
    found = qingshiwan.match_faq(question)
    assert found is not None and found.faq.id == faq_id


@pytest.mark.parametrize(
    "message",
    [
        # service requests: they are orders, not questions
        "楼上漏水把我家天花板泡了",
        "帮我预约一下义诊",
        "我家厨房下水道堵了",
        "老人想理个发",
        "小区路灯坏了好几天",
        "帮我开一个居住证明",
        "想请律师帮我看看合同",
        # greetings, thanks, ratings, chit-chat, news
        "你好",
        "在吗",
        "谢谢你们",
        "5分",
        "好的知道了",
        "今天天气真好",
        "师傅人很好，修得很快",
        "上周的消防演练搞得真好",
        # questions the catalog has no answer to
        "附近的菜市场几点关门",
        "菜市场几点开门在哪里",  # hours and place, but of no entry's subject
        "医院周末上不上班",
        "派出所几点下班在哪",
        "社区有没有招聘保安",
        "社区书记叫什么名字",
        "驾照到期了去哪里换",
        "公积金怎么取",
        "社区有没有游泳池",
        "物业费一年多少钱",
        # emergencies are not answered from the FAQ
        "救命",
        "我被骗了两万块",
    ],
)
def test_requests_chat_and_unknown_questions_get_no_answer(demo: Matcher, message: str) -> None:
    assert demo.match_faq(message) is None


@pytest.mark.parametrize(
    "message",
    [
        "厨房水管漏水了",
        "门禁卡丢了要补办",
        "想报名太极拳班",
        "你好呀",
        "附近超市几点关门",
        "派出所几点上班",
    ],
)
def test_another_community_answers_no_request_chat_or_unknown_question(
    qingshiwan: Matcher, message: str
) -> None:
    assert qingshiwan.match_faq(message) is None


def test_a_question_two_entries_fit_gets_no_answer(qingshiwan: Matcher) -> None:
    """The library's entry is asked as 图书馆几点开门, the committee's as 居委会上班时间:
    for 居委会几点开门 the library's hours score a little higher. Neither is given."""
    assert qingshiwan.match_faq("居委会几点开门") is None
    candidates = qingshiwan.faq.candidates("居委会几点开门")
    assert {c.faq.id for c in candidates[:2]} == {"library-hours", "office-hours"}


def test_a_catalog_without_faq_answers_nothing() -> None:
    matcher = Matcher(parse_catalog(PLAIN))
    assert len(matcher.faq) == 0
    assert matcher.match_faq("开居住证明要带什么") is None
    assert matcher.faq.candidates("开居住证明要带什么") == ()
    # its items are matched as before
    assert matcher.match("开居住证明").item == "proof"


def test_faq_index_stands_alone_and_agrees_with_the_matcher() -> None:
    catalog = parse_catalog(WITH_FAQ)
    alone = FaqIndex(catalog).match("居委会几点开门")
    assert alone is not None and alone.faq.id == "hours"
    assert Matcher(catalog).match_faq("居委会几点开门") == alone


def test_faq_entries_do_not_change_how_items_are_matched() -> None:
    plain, with_faq_ = Matcher(parse_catalog(PLAIN)), Matcher(parse_catalog(WITH_FAQ))
    for message in ("楼上漏水了", "总闸跳了", "开居住证明要带什么", "居委会几点开门"):
        assert plain.match(message) == with_faq_.match(message)


async def test_the_live_catalog_swaps_answers_with_the_catalog() -> None:
    live = await LiveCatalog.load(parse_catalog(WITH_FAQ))
    before = live.matcher.match_faq("居委会几点开门")
    assert before is not None and "8:30" in before.faq.answer

    changed = WITH_FAQ.replace("上午8:30-12:00", "上午9:00-12:00")
    assert await live.replace(parse_catalog(changed))
    after = live.matcher.match_faq("居委会几点开门")
    assert after is not None and "9:00" in after.faq.answer
