"""What a person sees of an answer: the text of a page, or a plain-text body.

Used to check that no English (or a parameter's name, an internal id) reaches a
resident or staff member: text between tags, and the attributes a browser shows
(placeholders, tooltips, button values), without scripts, styles and hidden inputs.
Text inside ``<code>`` is left out too: a page may quote something staff type or
copy as it is (a command, a setting's name) there, and only there.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ASCII_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{3,}(?![A-Za-z0-9])")
"""An English word: three or more ASCII letters standing alone. Letters glued to
digits (an order code, ``staff1``, a date) are not words."""
SHOWN_ATTRIBUTES = ("placeholder", "title", "alt", "aria-label")
HIDDEN_TAGS = ("script", "style", "code")
"""Elements whose text is not checked: not shown, or quoted as it is (``code``)."""


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1
        values = dict(attrs)
        self.parts += [values[name] or "" for name in SHOWN_ATTRIBUTES if values.get(name)]
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(body: str, content_type: str = "text/html") -> str:
    """The words a person sees: the page's text, or a plain-text body as it is."""
    if "html" not in content_type:
        return body
    parser = _Visible()
    parser.feed(body)
    parser.close()
    return " ".join(" ".join(parser.parts).split())


def english_words(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [word for word in ASCII_WORD.findall(text) if word not in allowed]
