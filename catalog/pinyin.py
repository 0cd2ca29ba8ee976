"""Sound-alike matching: voice input and quick typing produce homophones.

疫描 for 疫苗, 社宝卡 for 社保卡, 户扣 for 户口: the characters differ, the sound does
not. Terms and messages are compared as toneless pinyin syllables, with the initials
that southern speakers commonly merge treated as equal (zh/z, ch/c, sh/s), so a slip
of the keyboard or the ear still finds its term. (Merging -ng/-n as well was tried
and made unrelated words collide, e.g. 讲/剪.)
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import cache
from pathlib import Path

SEPARATOR = "|"
NON_HAN = "#"


def is_han(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


@cache
def _readings() -> dict[int, str]:
    """Code point → the char's most common reading, e.g. ``zhōng``.

    Taken from pypinyin's single-character table, loaded on its own: importing the
    pypinyin package would also load its phrase dictionary (~55 MB) that
    character-by-character matching never uses.
    """
    spec = importlib.util.find_spec("pypinyin")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pypinyin is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pinyin_dict.py"
    module_spec = importlib.util.spec_from_file_location("_order_menu_pinyin_dict", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    table: dict[int, str] = module.pinyin_dict
    return {code: readings.split(",")[0] for code, readings in table.items()}


@cache
def syllable(char: str) -> str:
    """The char's merged toneless syllable; ``#`` for anything that is not a Han char."""
    if not is_han(char):
        return NON_HAN
    reading = _readings().get(ord(char))
    if not reading:
        return NON_HAN
    decomposed = unicodedata.normalize("NFD", reading)
    value = "".join(c for c in decomposed if not unicodedata.combining(c))
    for retroflex, plain in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if value.startswith(retroflex):
            value = plain + value[2:]
            break
    return value


def sound_key(term: str) -> str:
    """``|se|bao|ka|`` for 社保卡: a key that only matches on syllable boundaries."""
    return SEPARATOR + SEPARATOR.join(syllable(c) for c in term) + SEPARATOR


def sound_text(text: str) -> tuple[str, list[int]]:
    """The message as syllables, and where each char's syllable starts in that string."""
    starts: list[int] = []
    parts: list[str] = []
    position = 0
    for char in text:
        starts.append(position)
        sound = SEPARATOR + syllable(char)
        parts.append(sound)
        position += len(sound)
    return "".join(parts) + SEPARATOR, starts
