"""What the browser tests share: signing in as a person would, and looking at a page
as a person sees it (no English word, no internal id), with a screenshot kept under
``test-artifacts/screenshots/<backend>/``."""

from __future__ import annotations

from typing import Any

from tests.test_browser import ARTIFACTS
from tests.test_console import PASSWORD
from tests.test_staff_pages_chinese import ALLOWED, INTERNAL_IDS
from tests.visible_text import english_words, visible_text


class Pages:
    def __init__(self, base: str, backend: str, allowed: set[str] | frozenset[str] = frozenset()):
        self.base = base
        self.allowed = ALLOWED | set(allowed)
        """Words that may show (an order's code can be all letters)."""
        self.shots = ARTIFACTS / backend
        self.shots.mkdir(parents=True, exist_ok=True)

    async def check(self, page: Any, name: str) -> None:
        """No English word or internal id on the page as shown; a screenshot kept."""
        text = visible_text(await page.content())
        words = english_words(text, self.allowed) + INTERNAL_IDS.findall(text)
        assert not words, (name, words, text[:300])
        await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    async def sign_in(self, page: Any, path: str, username: str) -> None:
        """Open ``path``, which asks for a login first, and log in as ``username``."""
        await page.goto(f"{self.base}{path}")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
