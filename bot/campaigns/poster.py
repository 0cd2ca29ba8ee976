"""A campaign's poster: one PNG for grid heads to share in their 楼栋群.

Portrait, 1080×1620 (a phone screen's width: it is read on phones, and WeChat shows
it without shrinking). From the top: the topic (反诈) on a coloured band with the
community's name, the campaign's title, its text wrapped to the width (Chinese wraps
between any two characters; a closing mark never starts a line; what does not fit
ends in …), and at the bottom the QR code back to the account with 扫码关注，随时找社区
and the date.

Drawing is CPU work (tens of milliseconds): :func:`render_poster` runs it in a thread,
and :class:`PosterCache` keeps the last few, so a page that shows the poster and its
download link draws it once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import re
from collections import OrderedDict
from dataclasses import astuple, dataclass

import segno
from PIL import Image, ImageDraw, ImageFont

from bot.campaigns.fonts import FontFile

WIDTH, HEIGHT = 1080, 1620
MARGIN = 80
BAND = (183, 28, 28)
"""The band's red: a safety notice, read at a glance."""
INK = (33, 33, 33)
MUTED = (97, 97, 97)
PANEL = (255, 243, 224)
WHITE = (255, 255, 255)
ELLIPSIS = "…"
SCAN_LINES = ("扫码关注", "随时找社区")
NO_LINE_START = frozenset("，。、！？；：”’）》」』】…,.!?;:)%")
"""Marks that close something: they stay at the end of the line before."""
WORD = re.compile(r"[A-Za-z0-9]+|.", re.S)
"""A run of Latin letters or digits stays whole; anything else is one character."""


@dataclass(frozen=True)
class PosterContent:
    """Everything a poster shows; two equal contents make the same poster."""

    topic: str
    title: str
    text: str
    community: str
    qr_url: str
    """What the QR code carries: the account's scene code (or a stand-in in development)."""
    date: dt.date

    def digest(self, font: FontFile) -> str:
        """Names this poster as drawn with ``font``, for the cache."""
        parts = [*map(str, astuple(self)), font.path, str(font.index)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def date_zh(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, max_lines: int) -> list[str]:
    """``text`` in lines no wider than ``width`` (its own line breaks kept), at most
    ``max_lines``; when it is longer, the last line ends in …."""
    lines: list[str] = []
    for paragraph in text.strip().splitlines() or [""]:
        line = ""
        for token in WORD.findall(paragraph.strip()):
            if font.getlength(line + token) <= width:
                line += token
                continue
            if line and token in NO_LINE_START:  # it takes the word before it along
                cut = _last_word(line)
                if cut > 0:
                    lines.append(line[:cut])
                    line = line[cut:] + token
                else:  # nothing to take along: it hangs past the edge
                    line += token
                continue
            if line:
                lines.append(line)
            line = ""
            for char in token:  # a Latin run wider than the line is broken anyway
                if line and font.getlength(line + char) > width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    last = kept[-1]
    while last and font.getlength(last + ELLIPSIS) > width:
        last = last[:-1]
    kept[-1] = last.rstrip("，。、；：,.;: ") + ELLIPSIS
    return kept


def _last_word(line: str) -> int:
    """Where the last character or Latin run of ``line`` starts, with the closing
    marks after it (the part carried to the next line with another mark)."""
    cut = len(line) - 1
    while cut > 0 and line[cut] in NO_LINE_START:
        cut -= 1
    while cut > 0 and line[cut].isascii() and line[cut].isalnum() and line[cut - 1].isalnum():
        cut -= 1
    return cut


def qr_image(url: str, size: int) -> Image.Image:
    """The QR code of ``url``, black on white with its quiet zone, at most ``size``
    pixels square (a whole number of pixels per module, so it stays sharp)."""
    code = segno.make(url, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    scale = max(1, size // modules)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render(content: PosterContent, font: FontFile) -> bytes:
    """The poster as PNG bytes. Blocking CPU work: see :func:`render_poster`."""
    image = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN

    draw.rectangle((0, 0, WIDTH, 260), fill=BAND)
    small = font.at(40)
    draw.text((MARGIN, 40), content.community, font=small, fill=WHITE)
    draw.text(
        (MARGIN, 100),
        wrap(content.topic, font.at(96), inner, 1)[0],
        font=font.at(96),
        fill=WHITE,
        stroke_width=2,
        stroke_fill=WHITE,
    )

    y = 310
    title_font = font.at(64)
    for line in wrap(content.title, title_font, inner, 2):
        draw.text((MARGIN, y), line, font=title_font, fill=INK, stroke_width=1, stroke_fill=INK)
        y += 86
    y += 24
    body = font.at(44)
    panel_top = 1150
    max_lines = max(1, (panel_top - 40 - y) // 70)
    for line in wrap(content.text, body, inner, max_lines):
        draw.text((MARGIN, y), line, font=body, fill=INK)
        y += 70

    draw.rectangle((0, panel_top, WIDTH, HEIGHT), fill=PANEL)
    code = qr_image(content.qr_url, 390)
    image.paste(code, (MARGIN - 20, panel_top + 40))
    right = MARGIN + code.width + 20
    big = font.at(60)
    for n, line in enumerate(SCAN_LINES):
        draw.text(
            (right, panel_top + 80 + 84 * n),
            line,
            font=big,
            fill=BAND,
            stroke_width=1,
            stroke_fill=BAND,
        )
    column = WIDTH - MARGIN - right
    draw.text(
        (right, panel_top + 290), wrap(content.community, small, column, 1)[0], font=small, fill=INK
    )
    draw.text((right, panel_top + 350), date_zh(content.date), font=font.at(36), fill=MUTED)

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def render_poster(content: PosterContent, font: FontFile) -> bytes:
    """:func:`render` in a thread: the event loop keeps answering meanwhile."""
    return await asyncio.to_thread(render, content, font)


class PosterCache:
    """The last few posters drawn, by campaign and content: a campaign edited (or its
    QR code made at last) is drawn afresh; one asked for again is not."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._posters: OrderedDict[tuple[int, str], bytes] = OrderedDict()

    async def poster(self, campaign_id: int, content: PosterContent, font: FontFile) -> bytes:
        key = (campaign_id, content.digest(font))
        found = self._posters.get(key)
        if found is None:
            found = await render_poster(content, font)
            self._posters[key] = found
            while len(self._posters) > self._size:
                self._posters.popitem(last=False)
        self._posters.move_to_end(key)
        return found
