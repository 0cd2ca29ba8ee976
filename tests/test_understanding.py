"""One reading per message (``catalog.understanding``): the act, the service, the FAQ
answer, decided together on the demo catalog."""

from __future__ import annotations

import pytest

from catalog.acts import Act
from catalog.loader import load_catalog
from catalog.matcher import Matcher
from catalog.understanding import understand
from tests.conftest import DEMO_CATALOG


@pytest.fixture(scope="module")
def demo() -> Matcher:
    return Matcher(load_catalog(DEMO_CATALOG))


def test_a_question_about_the_office_is_answered_from_the_faq(demo: Matcher) -> None:
    reading = understand("社区几点上班？", demo)
    assert reading.act is Act.QUESTION and reading.answer is not None
    assert "8:30" in reading.answer


def test_a_question_about_booking_a_service_goes_to_the_service(demo: Matcher) -> None:
    reading = understand("义诊怎么报名", demo)
    assert reading.act is Act.REQUEST and reading.match.item == "free-clinic"
    assert reading.faq is None


def test_asking_for_something_done_is_not_answered_with_a_guess(demo: Matcher) -> None:
    reading = understand("我钥匙丢了，能帮我开锁吗", demo)
    assert reading.faq is None and reading.act is Act.REQUEST


def test_praise_of_a_service_is_not_a_request_for_it(demo: Matcher) -> None:
    reading = understand("上周的消防演练搞得真好，感谢消防队", demo)
    assert reading.act is Act.THANKS and not reading.wants_service


def test_only_requests_nobody_serves_are_unmet_needs(demo: Matcher) -> None:
    assert not understand("你好", demo).unmet_need
    assert not understand("帮我订张去北京的机票", demo).unmet_need  # no community does
    assert not understand("3栋", demo).unmet_need  # says nothing
    assert understand("小区里能不能办个老年人学跳舞的班", demo).unmet_need


def test_a_confidential_report_is_never_read_as_a_complaint(demo: Matcher) -> None:
    reading = understand("我要投诉社区工作人员吃拿卡要，办事还要收红包", demo)
    assert reading.act is Act.REQUEST
    assert demo.catalog.item(reading.match.candidates[0].item).confidential


def test_an_unsolved_report_from_someone_with_no_order(demo: Matcher) -> None:
    reading = understand("楼道灯还是不亮", demo)
    assert reading.act is Act.OUTCOME
    assert reading.without_orders().act is Act.REQUEST  # a report to act on
    promised = understand("说好的上门换药，等到下午也没见人", demo).without_orders()
    assert promised.act is Act.COMPLAINT  # a promise the system does not know: staff


def test_an_answered_question_that_names_a_service_offers_it(demo: Matcher) -> None:
    reading = understand("打疫苗在哪里打？", demo)
    assert reading.act is Act.QUESTION and reading.answer is not None
    assert reading.offer == "vaccination-info" and not reading.wants_service
    assert understand("社区几点上班？", demo).offer is None  # nothing to book
