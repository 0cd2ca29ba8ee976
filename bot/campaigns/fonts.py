"""Finding a font that draws Chinese, for posters.

A font without Chinese glyphs draws every character as the same empty box, and the
poster would go to a 楼栋群 unreadable; so every candidate is tried on a few
characters before it is used. Candidates, in order:

1. ``POSTER_FONT`` (a .ttf, .otf or .ttc file), the operator's choice;
2. what fontconfig (``fc-match``) picks for sans-serif Chinese, where it is installed;
3. the usual places of Noto Sans CJK / WenQuanYi / Droid on Debian-like systems;
4. Kurinto Sans SC from the ``weblate-fonts`` package (a dependency): a fresh clone
   installed with pip draws Chinese without any system package.

Reading font files and running ``fc-match`` is blocking work: :func:`find_font`
does it in a thread, once per process (:class:`FontFinder` keeps the answer).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

PROBE = "社区反诈"
"""Characters every candidate must draw, each differently: a font without them draws
one box for all."""
FC_MATCH_TIMEOUT = 5.0
KNOWN_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: SC
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
)
NO_FONT_LOG = (
    "no font with Chinese glyphs for campaign posters: set POSTER_FONT to a .ttf/.otf/.ttc "
    "file that has them (e.g. NotoSansCJK-Regular.ttc from the fonts-noto-cjk package)"
)


@dataclass(frozen=True)
class FontFile:
    """A font file and the face in it (a .ttc holds several)."""

    path: str
    index: int = 0

    def at(self, size: int) -> ImageFont.FreeTypeFont:
        """The face at ``size`` pixels (loaded once per size)."""
        return _load(self.path, self.index, size)


@lru_cache(maxsize=64)
def _load(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


def draws_chinese(font: FontFile) -> bool:
    """Whether the font draws the probe characters, each as a glyph of its own."""
    try:
        face = ImageFont.truetype(font.path, 32, index=font.index)
    except OSError:
        return False
    masks = [bytes(face.getmask(ch)) for ch in PROBE]
    return all(any(mask) for mask in masks) and len(set(masks)) == len(masks)


def fontconfig_choice() -> FontFile | None:
    """The font fontconfig would use for Chinese sans-serif text, if it is installed."""
    try:
        done = subprocess.run(
            ["fc-match", "--format", "%{file}\n%{index}", "sans-serif:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=FC_MATCH_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = done.stdout.partition("\n")
    if done.returncode != 0 or not path:
        return None
    return FontFile(path, int(index) if index.strip().isdigit() else 0)


def packaged_font() -> FontFile | None:
    """Kurinto Sans SC, shipped by the ``weblate-fonts`` package."""
    try:
        found = resources.files("weblate_fonts") / "static/weblate_fonts/kurinto/ttf"
    except ModuleNotFoundError:
        return None
    path = Path(str(found)) / "KurintoSansSC-Rg.ttf"
    return FontFile(str(path)) if path.is_file() else None


def locate(setting: Path | None, *, system: bool = True, packaged: bool = True) -> FontFile | None:
    """The first candidate that draws Chinese (see the module doc); None if none does.

    ``system`` and ``packaged`` turn off the search beyond ``POSTER_FONT`` (tests of
    a machine without fonts). Blocking: call it in a thread.
    """
    if setting is not None:
        chosen = FontFile(str(setting))
        if draws_chinese(chosen):
            return chosen
        log.warning("POSTER_FONT=%s does not draw Chinese; looking for another font", setting)
    candidates: list[FontFile | None] = []
    if system:
        candidates.append(fontconfig_choice())
        candidates += [FontFile(path, index) for path, index in KNOWN_FONTS]
    if packaged:
        candidates.append(packaged_font())
    for candidate in candidates:
        if candidate is not None and Path(candidate.path).is_file() and draws_chinese(candidate):
            return candidate
    log.error(NO_FONT_LOG)
    return None


class FontFinder:
    """The poster font of this process: looked for on first use, then kept. When none
    was found it looks again on the next use (the operator may have installed one)."""

    def __init__(self, setting: Path | None, *, system: bool = True, packaged: bool = True):
        self._setting = setting
        self._system = system
        self._packaged = packaged
        self._found: FontFile | None = None
        self._lock = asyncio.Lock()

    async def find_font(self) -> FontFile | None:
        async with self._lock:
            if self._found is None:
                self._found = await asyncio.to_thread(
                    locate, self._setting, system=self._system, packaged=self._packaged
                )
                if self._found is not None:
                    log.info("campaign posters use the font %s", self._found.path)
            return self._found
