"""Campaign topics: the catalog's, or the defaults every community starts with."""

from __future__ import annotations

from catalog.model import Catalog
from catalog.schema import Topic

DEFAULT_TOPICS = [
    Topic(id="anti-fraud", name="反诈"),
    Topic(id="drowning", name="防溺水"),
    Topic(id="fire", name="消防安全"),
    Topic(id="drugs", name="禁毒"),
    Topic(id="waste-sorting", name="垃圾分类"),
    Topic(id="power-gas", name="用电用气安全"),
    Topic(id="events", name="社区活动"),
]


def topics(catalog: Catalog) -> list[Topic]:
    return list(catalog.document.topics) or list(DEFAULT_TOPICS)


def find(catalog: Catalog, said: str) -> Topic | None:
    """A topic by its id or name, as a resident or an operator says it (防溺水, 反诈骗)."""
    said = said.strip().rstrip("。.")
    for topic in topics(catalog):
        if said in (topic.id, topic.name) or (said and (topic.name in said or said in topic.name)):
            return topic
    return None
