"""The command line: clear errors, right exit codes, and the commands operators use."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli import main
from storage import models
from storage.engine import create_engine, create_sessionmaker
from tests.conftest import DEMO_CATALOG, QINGSHIWAN
from tests.test_catalog_import import place_order


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real entry point, as a user would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
    )


def invoke(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_console_script_is_installed() -> None:
    script = shutil.which("order-menu", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "serve" in result.stdout


def test_validate_a_good_catalog_exits_0() -> None:
    result = run_cli("catalog", "validate", str(QINGSHIWAN))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "青石湾社区, 13 units, 27 items" in result.stdout


def test_validate_broken_catalog_lists_problems_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        QINGSHIWAN.read_text(encoding="utf-8")
        .replace("    unit: justice-office\n", "    unit: justce-office\n", 1)
        .replace("    title: 电梯故障报修\n", '    title: ""\n', 1)
        .replace("- id: food-safety\n", "- id: pipe-repair\n", 1),
        encoding="utf-8",
    )
    result = run_cli("catalog", "validate", str(broken))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("items[4].unit: unknown unit 'justce-office'") for line in lines)
    assert any(line.startswith("items[11].title: must not be empty") for line in lines)
    assert any(line.startswith("items[21].id: duplicate item id 'pipe-repair'") for line in lines)
    assert lines[-1] == f"error: {broken}: 3 problem(s)"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["db", "upgrade"],
        ["catalog", "validate"],
        ["catalog", "import"],
        ["orders", "list"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_bad_configuration_is_one_line_and_exit_2() -> None:
    result = run_cli("orders", "list", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: invalid configuration: DATABASE_URL=")
    assert "Traceback" not in result.stderr


def test_bad_status_names_the_option() -> None:
    result = invoke("orders", "list", "--status", "bogus")
    assert result.exit_code == 2
    assert "--status: unknown status 'bogus'; expected one of: submitted," in result.output


def test_unreachable_database_is_one_clear_line() -> None:
    result = run_cli("orders", "list", env={"DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: cannot use the database postgresql+asyncpg://u@127.0.0.1:1/x"
    )
    assert "Traceback" not in result.stderr


def test_commands_ask_for_a_migrated_database(empty_db_url: str) -> None:
    result = invoke("catalog", "import", str(QINGSHIWAN), DATABASE_URL=empty_db_url)
    assert result.exit_code == 1
    assert "run `order-menu db upgrade` first" in result.output

    upgraded = invoke("db", "upgrade", DATABASE_URL=empty_db_url)
    assert upgraded.exit_code == 0 and "migrated from empty to" in upgraded.output
    assert "is current" in invoke("db", "upgrade", DATABASE_URL=empty_db_url).output


def test_catalog_import_is_idempotent_from_the_cli(db_url: str) -> None:
    first = invoke("catalog", "import", str(QINGSHIWAN), "--json", DATABASE_URL=db_url)
    assert first.exit_code == 0
    summary = json.loads(first.output)
    assert len(summary["items"]["added"]) == 27 and summary["new_version"]
    again = invoke("catalog", "import", str(QINGSHIWAN), DATABASE_URL=db_url)
    assert again.exit_code == 0 and "nothing changed" in again.output


def test_a_proxy_order_for_a_weekly_class_takes_a_place_in_a_dated_slot(
    db_url: str,
) -> None:
    """代办 for the lawyer's Wednesday mornings: the slot is asked for, as by chat, and a
    place is taken (it used to be placed with no slot, no place and no reminder)."""
    assert invoke("catalog", "import", str(DEMO_CATALOG), DATABASE_URL=db_url).exit_code == 0
    flags = ["orders", "create", "--item", "legal-consult", "--consent-given", "--name", "王"]
    flags += ["--phone"]
    missing = invoke(*flags, "13800000000", DATABASE_URL=db_url)
    assert missing.exit_code == 1, missing.output
    found = re.search(r"needs one of: (w0-\d{8})", missing.output)
    assert found is not None, missing.output
    placed = invoke(*flags, "13800000000", "--session", found[1], DATABASE_URL=db_url)
    assert placed.exit_code == 0, placed.output

    async def booked() -> int:
        engine = create_engine(db_url)
        try:
            async with create_sessionmaker(engine)() as session:
                row = await session.scalar(
                    select(models.ItemSlot).where(models.ItemSlot.key == found[1])
                )
                return -1 if row is None else row.booked
        finally:
            await engine.dispose()

    assert asyncio.run(booked()) == 1


def test_orders_list_json_shows_each_order(db_url: str) -> None:
    assert invoke("catalog", "import", str(QINGSHIWAN), DATABASE_URL=db_url).exit_code == 0

    async def place() -> None:
        engine = create_engine(db_url)
        try:
            await place_order(create_sessionmaker(engine), "pipe-repair", code="H3KX7P")
        finally:
            await engine.dispose()

    asyncio.run(place())
    result = invoke("orders", "list", "--json", DATABASE_URL=db_url)
    assert result.exit_code == 0
    [order] = [json.loads(line) for line in result.output.splitlines()]
    assert order["code"] == "H3KX7P" and order["item"] == "pipe-repair"
    assert order["unit"] == "estate-office" and order["status"] == "submitted"
    assert order["resident"] == "王阿姨" and order["session"] is None
    assert order["created_at"].endswith("+00:00")

    text = invoke("orders", "list", "--status", "已提交", DATABASE_URL=db_url)
    assert "H3KX7P" in text.output and "管道疏通维修" in text.output
    empty = invoke("orders", "list", "--status", "completed", DATABASE_URL=db_url)
    assert empty.output.strip() == "no orders with status completed"


def test_match_reads_stdin_and_answers_one_json_line_per_message() -> None:
    messages = "楼上老往我家滴水\n\n你好\n请问下周的健康讲座几点开始\n"
    result = CliRunner().invoke(
        main, ["match", "--json", "--catalog", str(DEMO_CATALOG)], input=messages
    )
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["text"] for a in answers] == messages.splitlines()
    assert answers[0]["decision"] == "matched" and answers[0]["item"] == "home-repair"
    assert answers[1]["decision"] == "none" and answers[1]["candidates"] == []
    assert answers[2]["decision"] == "none" and answers[2]["item"] is None
    assert answers[3]["item"] == "health-lecture"
    assert [a["act"] for a in answers] == ["request", "ack", "greeting", "request"]
    for answer in answers:
        assert set(answer) == {"text", "act", "decision", "item", "score", "candidates", "faq"}
        assert len(answer["candidates"]) <= 3
        assert 0.0 <= answer["score"] <= 1.0


def test_match_takes_messages_as_arguments_too() -> None:
    result = CliRunner().invoke(
        main, ["match", "--catalog", str(DEMO_CATALOG), "--explain", "社宝卡丢了"]
    )
    assert result.exit_code == 0
    assert "社保卡上门代办" in result.output and "terms:" in result.output


def test_match_shows_what_the_resident_is_doing() -> None:
    said = ["谢谢你们", "救命", "社区居委会几点上班？"]
    result = CliRunner().invoke(main, ["match", "--catalog", str(DEMO_CATALOG), *said])
    assert result.exit_code == 0, result.output
    thanks, emergency, question = result.output.splitlines()
    assert thanks.startswith("thanks") and emergency.startswith("emergency danger")
    assert question.startswith("question  faq ")


def test_match_thresholds_come_from_the_environment() -> None:
    args = ["match", "--json", "--catalog", str(DEMO_CATALOG), "楼上老往我家滴水"]
    default = json.loads(CliRunner().invoke(main, args).output)
    assert default["decision"] == "matched"
    strict = CliRunner().invoke(
        main, args, env={"MATCH_MATCHED": "0.99", "MATCH_AMBIGUOUS": "0.98"}
    )
    assert json.loads(strict.output)["decision"] == "none"
    wrong = CliRunner().invoke(main, args, env={"MATCH_MATCHED": "0.3", "MATCH_AMBIGUOUS": "0.5"})
    assert wrong.exit_code == 2
    assert "MATCH_AMBIGUOUS (0.5) must not exceed MATCH_MATCHED (0.3)" in wrong.output
