"""The code stays lint-clean: ruff runs as part of the suite, so CI enforces it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is installed with the [test] extra"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the order domain owns order statuses ------------------------------------------------

PROJECT_PACKAGES = ("bot", "handlers", "catalog", "storage")
DOMAIN = "bot/orders/"
LOW_LEVEL_WRITE = "storage/repositories/ordering.py"
"""The one write the domain uses (``write_transition``, and ``insert_order``, which
creates an order as submitted)."""


def status_writes(source: str) -> list[tuple[int, str]]:
    """Where ``source`` changes an order's status, or calls the low-level write
    itself, bypassing the order domain: (line, what)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if (
                    isinstance(leaf, ast.Attribute)
                    and leaf.attr == "status"
                    and "order" in ast.unparse(leaf.value).lower()
                ):
                    found.append((node.lineno, f"assigns {ast.unparse(leaf)}"))
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        if called.endswith(("write_transition", "ordering.transition", "repo.transition")):
            found.append((node.lineno, f"calls {called}"))
        if (
            called == "setattr"
            and len(node.args) > 1
            and "order" in ast.unparse(node.args[0]).lower()
            and ast.unparse(node.args[1]).strip("'\"") == "status"
        ):
            found.append((node.lineno, "setattr(order, 'status')"))
        keywords = {k.arg for k in node.keywords}
        if "status" in keywords and (
            called.endswith(".Order") or called == "Order" or _updates_orders(node.func)
        ):
            found.append((node.lineno, f"{called}(status=...)"))
    return found


def _updates_orders(func: ast.expr) -> bool:
    """``update(models.Order)…values(status=…)`` (or ``update(Order)``)."""
    if not (isinstance(func, ast.Attribute) and func.attr == "values"):
        return False
    for inner in ast.walk(func.value):
        if (
            isinstance(inner, ast.Call)
            and ast.unparse(inner.func).endswith("update")
            and inner.args
            and ast.unparse(inner.args[0]).split(".")[-1] in ("Order", "orders")
        ):
            return True
    return False


def test_the_checker_finds_each_way_of_bypassing_the_domain() -> None:
    bypasses = """
order.status = "closed"
self.order.status: str = OrderStatus.CLOSED.value
setattr(order, "status", "closed")
await ordering.write_transition(session, order, to, actor="x")
await repo.transition(session, order, to, actor="x")
await session.execute(update(models.Order).where(x).values(status="closed"))
row = models.Order(code="A", status="dispatched")
"""
    assert sorted(line for line, _ in status_writes(bypasses)) == [2, 3, 4, 5, 6, 7, 8]
    fine = """
broadcast.status = "done"
handoff.status = "answered"
await domain.transition(session, order, to, actor="x", catalog=c, policy=p, now=n)
await session.execute(update(models.Broadcast).values(status="done"))
"""
    assert status_writes(fine) == []


def test_only_the_order_domain_changes_an_orders_status() -> None:
    """Chat, console, CLI and scheduled jobs move orders through ``bot.orders.domain``,
    which writes each change's effects with it; nothing else sets ``order.status``
    or calls the low-level write (each did, with effects of its own choosing)."""
    offenders = []
    for package in PROJECT_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith(DOMAIN) or relative == LOW_LEVEL_WRITE:
                continue
            if "/migrations/" in relative:
                continue
            offenders += [
                f"{relative}:{line}: {what}"
                for line, what in status_writes(path.read_text(encoding="utf-8"))
            ]
    assert not offenders, "order statuses are changed by bot.orders.domain only:\n" + "\n".join(
        offenders
    )
