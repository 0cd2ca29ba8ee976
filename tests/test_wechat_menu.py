"""Menu files (bot/wechat/menu.py): what ``order-menu menu push --file`` refuses, and why.

The shape problems of a whole file are covered through the command in
tests/test_wechat_api.py; these are the files that cannot be read at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.wechat.menu import MenuFileError, load_menu


def test_a_good_file_is_returned_as_written(tmp_path: Path) -> None:
    path = tmp_path / "menu.yaml"
    path.write_text(
        "button:\n  - {name: 帮助, type: click, key: HELP}\n"
        "  - name: 更多\n    sub_button:\n      - {name: 公示, type: view, url: 'https://e.org'}\n",
        encoding="utf-8",
    )
    assert load_menu(path)["button"][1]["sub_button"][0]["url"] == "https://e.org"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("menu.json", '{"button": ', "not valid JSON"),
        ("menu.yaml", "button: [\n", "not valid YAML"),
        ("gone.yaml", None, "No such file or directory"),
    ],
)
def test_an_unreadable_file_is_one_message_without_shape_problems(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(MenuFileError) as raised:
        load_menu(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    assert raised.value.problems == []


def test_every_shape_problem_is_listed_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "menu.yaml"
    path.write_text("button:\n  - {name: x, type: miniprogram, url: u}\n  - 3\n", encoding="utf-8")
    with pytest.raises(MenuFileError) as raised:
        load_menu(path)
    assert str(raised.value) == f"{path}: 3 problem(s) in the menu"
    assert raised.value.problems == [
        "button[0].appid: required for type miniprogram",
        "button[0].pagepath: required for type miniprogram",
        "button[1]: expected a mapping with name and type",
    ]
