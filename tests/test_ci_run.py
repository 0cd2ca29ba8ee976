""".ci/run runs the README's test command in a copy of the repository with nothing
beside it, so a test that reads a file outside the repository fails in CI.

The real script runs on a small git repository made here, with a folder of
evaluation files beside it, and with stand-ins for python3 (whose venv holds a pip and a
pytest that record what they see), pg_isready, chromium and fc-list: the script's own
logic runs for real in a second, without installing anything or running the suite.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
    ".venv/bin/pytest -n auto -m 'not serial' && .venv/bin/pytest -m serial"
)

FAKE_PYTHON3 = """#!/bin/sh
echo "python3 $*" >> "$OM_FAKE_LOG"
[ "$1 $2" = "-m venv" ] || exit 99
mkdir -p "$3/bin" && cp "$OM_FAKE_TOOLS/pip" "$OM_FAKE_TOOLS/pytest" "$3/bin/"
"""
FAKE_PIP = """#!/bin/sh
echo "pip $*" >> "$OM_FAKE_LOG"
"""
FAKE_PYTEST = """#!/bin/sh
{
  echo "pytest $*"
  echo "cwd $(pwd -P)"
  echo "beside $(ls -A ..)"
  echo "env $TEST_DATABASE_URL $ORDER_MENU_REQUIRE_POSTGRES $ORDER_MENU_REQUIRE_BROWSER"
} >> "$OM_FAKE_LOG"
[ -e "$OM_FAKE_FILES" ] || find . -path ./.venv -prune -o -type f -print | sort > "$OM_FAKE_FILES"
mkdir -p test-artifacts/screenshots && echo png > test-artifacts/screenshots/shot.png
case "$*" in
  *"not serial"*) exit "${OM_FAKE_PARALLEL_STATUS:-0}" ;;
  *) exit "${OM_FAKE_SERIAL_STATUS:-0}" ;;
esac
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone-like checkout holding the real .ci/run, README and .gitignore."""
    repo = tmp_path / "order-menu"
    (repo / ".ci").mkdir(parents=True)
    for name in (".ci/run", "README.md", ".gitignore"):
        shutil.copy2(REPO / name, repo / name)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_x.py").write_text("def test_x(): pass\n")
    (repo / "gone.txt").write_text("tracked, then deleted in the work tree\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    (repo / "gone.txt").unlink()
    (repo / "tests" / "test_new.py").write_text("def test_new(): pass\n")  # not committed yet
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").write_text("")
    (repo / "order-menu.db").write_text("")
    (repo / "tests" / "__pycache__").mkdir()
    (repo / "tests" / "__pycache__" / "x.pyc").write_text("")
    # Evaluation files beside the checkout, as on developer machines.
    (tmp_path / "beside" / "eval").mkdir(parents=True)
    (tmp_path / "beside" / "eval" / "catalog.yaml").write_text("community: {}\n")
    return repo


def run_ci(checkout: Path, **status: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    base = checkout.parent
    tools = base / "tools"
    tools.mkdir(exist_ok=True)
    for name, text in {
        "python3": FAKE_PYTHON3,
        "pip": FAKE_PIP,
        "pytest": FAKE_PYTEST,
        "pg_isready": "#!/bin/sh\nexit 0\n",
        "chromium": "#!/bin/sh\nexit 0\n",
        "fc-list": "#!/bin/sh\necho 'Noto Sans CJK SC'\n",
    }.items():
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    (base / "tmp").mkdir(exist_ok=True)
    env = {
        "PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(base),
        "TMPDIR": str(base / "tmp"),
        "OM_FAKE_TOOLS": str(tools),
        "OM_FAKE_LOG": str(base / "log"),
        "OM_FAKE_FILES": str(base / "files"),
        **status,
    }
    result = subprocess.run(
        ["bash", str(checkout / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = base / "log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_ci_runs_the_readme_command_in_a_copy_with_nothing_beside_it(checkout: Path) -> None:
    result, log = run_ci(checkout)
    assert result.returncode == 0, result.stderr
    commands = [line for line in log if line.split()[0] in ("python3", "pip", "pytest")]
    assert commands == [
        "python3 -m venv .venv",
        "pip install -q -e .[test]",
        "pytest -n auto -m not serial",
        "pytest -m serial",
    ]
    [cwd] = {line.removeprefix("cwd ") for line in log if line.startswith("cwd ")}
    copy = Path(cwd)
    assert copy != checkout.resolve() and copy.name == "order-menu"
    # Nothing beside the copy, although the checkout has a neighbour.
    assert {line for line in log if line.startswith("beside ")} == {"beside order-menu"}
    assert all(
        line == "env postgresql+asyncpg://postgres@127.0.0.1:5432/test 1 1"
        for line in log
        if line.startswith("env ")
    )
    # The files of a clone plus new ones; no deleted, ignored or local files.
    files = (checkout.parent / "files").read_text().split()
    assert files == [
        "./.ci/run",
        "./.gitignore",
        "./README.md",
        "./tests/test_new.py",
        "./tests/test_x.py",
    ]
    # The copy is gone afterwards; the screenshots the browser test took are kept.
    assert not copy.exists() and list((checkout.parent / "tmp").iterdir()) == []
    assert (checkout / "test-artifacts" / "screenshots" / "shot.png").read_text() == "png\n"


@pytest.mark.parametrize(
    ("status", "expected", "serial_ran"),
    [
        ({"OM_FAKE_PARALLEL_STATUS": "5"}, 5, False),  # pytest collected no test
        ({"OM_FAKE_PARALLEL_STATUS": "1"}, 1, False),
        ({"OM_FAKE_SERIAL_STATUS": "5"}, 5, True),
    ],
)
def test_ci_fails_with_the_status_of_the_failing_pytest(
    checkout: Path, status: dict[str, str], expected: int, serial_ran: bool
) -> None:
    result, log = run_ci(checkout, **status)
    assert result.returncode == expected, result.stderr
    assert ("pytest -m serial" in log) is serial_ran
    assert list((checkout.parent / "tmp").iterdir()) == []


def test_ci_calls_exactly_the_readme_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert readme.count(README_COMMAND) == 1  # the English test paragraph
    assert sum(line.strip() == README_COMMAND for line in readme) == 2  # and the Chinese one
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in script if line.strip() and not line.startswith("#")]
    assert commands[-1] == README_COMMAND  # the last command: its status is the script's
