"""Custom menu files (自定义菜单): reading one and checking it against WeChat's rules.

A menu is written in WeChat's own format (``button`` with up to three buttons, each
with up to five ``sub_button``), in YAML or JSON. The check here is about shape: each
button has a name, and a type with the fields that type needs (a click a key, a view
a url …); every problem is reported at once, each with its place
(``button[1].sub_button[0].url: required for type view``). WeChat itself checks the
finer limits (name lengths in bytes, valid URLs) when the menu is pushed.

``order-menu menu push --file`` (bot/cli/menu.py) loads a file through here; the
default three-button menu and its CLICK keys are in :mod:`bot.wechat`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


class MenuFileError(Exception):
    """A menu file that cannot be pushed; ``problems`` lists what is wrong with its shape
    (empty when the file could not be read or parsed at all)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def load_menu(path: Path) -> dict[str, Any]:
    """Read and check a menu file: YAML, or JSON when the name ends in ``.json``.

    Raises MenuFileError when the file cannot be read or parsed, or when its shape is
    wrong (then with every problem found, not only the first).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise MenuFileError(f"{path}: {exc.strerror or exc}") from exc
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise MenuFileError(f"{path}: not valid {kind}: {exc}") from exc
    problems = menu_problems(data)
    if problems:
        raise MenuFileError(f"{path}: {len(problems)} problem(s) in the menu", problems)
    assert isinstance(data, dict)
    return data


def menu_problems(data: Any) -> list[str]:
    """The menu's shape by WeChat's rules; WeChat itself checks the finer limits."""
    buttons = data.get("button") if isinstance(data, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return ["button: expected a list of 1 to 3 buttons"]
    problems: list[str] = []
    for i, button in enumerate(buttons):
        where = f"button[{i}]"
        problems += _named_problems(button, where)
        if not isinstance(button, dict):
            continue
        subs = button.get("sub_button")
        if subs is None:
            problems += _leaf_problems(button, where)
        elif not isinstance(subs, list) or not 1 <= len(subs) <= 5:
            problems.append(f"{where}.sub_button: expected a list of 1 to 5 buttons")
        else:
            for j, sub in enumerate(subs):
                sub_where = f"{where}.sub_button[{j}]"
                problems += _named_problems(sub, sub_where)
                if isinstance(sub, dict):
                    problems += _leaf_problems(sub, sub_where)
    return problems


_LEAF_FIELDS = {
    "view": ("url",),
    "miniprogram": ("url", "appid", "pagepath"),
    "media_id": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
}
"""What a button of each type needs besides its name; every other type needs a key."""


def _named_problems(button: object, where: str) -> list[str]:
    """A button must be a mapping with a name, whether it has sub-buttons or not."""
    if not isinstance(button, dict):
        return [f"{where}: expected a mapping with name and type"]
    if not isinstance(button.get("name"), str) or not button["name"]:
        return [f"{where}.name: required"]
    return []


def _leaf_problems(button: dict[str, Any], where: str) -> list[str]:
    kind = button.get("type")
    if not isinstance(kind, str) or not kind:
        return [f"{where}.type: required (click, view, miniprogram …) unless it has sub_button"]
    return [
        f"{where}.{name}: required for type {kind}"
        for name in _LEAF_FIELDS.get(kind, ("key",))
        if not isinstance(button.get(name), str) or not button[name]
    ]
