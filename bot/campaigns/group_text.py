"""The few lines a grid head posts in a 楼栋群 with a campaign's poster.

A group post is read on a phone between other messages: a headline, the campaign's
text cut to what reads at a glance, and how to reach the community's account, in at
most :data:`LONGEST` characters. Nothing internal (ids, topic keys) is in it: it is
copied into groups of residents as it is.
"""

from __future__ import annotations

LONGEST = 200
LONGEST_TITLE = 40
"""Longer titles and community names are cut, so the text keeps room to be read."""
ELLIPSIS = "…"
SENTENCE_ENDS = "。！？；!?;"


def reach_line(community: str) -> str:
    """How residents reach the account: the poster's QR code, or its name."""
    return f"有事找社区：长按识别海报上的二维码，关注「{community}」公众号，随时留言。"


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: whole sentences when they fill at
    least half of it, else cut with …."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    end = max(cut.rfind(mark) for mark in SENTENCE_ENDS)
    if end + 1 >= limit // 2:
        return cut[: end + 1]
    return cut.rstrip("，、：,: ") + ELLIPSIS


def group_post(*, topic: str, title: str, text: str, community: str) -> str:
    """The post: 【topic】title, the text shortened to fit, and the way to the account."""
    title = shorten(title, LONGEST_TITLE)
    head = f"【{title}】" if topic in title else f"【{topic}】{title}"
    tail = reach_line(shorten(community, LONGEST_TITLE))
    room = LONGEST - len(head) - len(tail) - 2  # two line breaks
    return "\n".join([head, shorten(text, room), tail])
