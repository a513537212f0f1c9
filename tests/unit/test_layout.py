"""House rules that a reader would otherwise have to check by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import PROJECT_ROOT

SHARED = sorted(p for p in (PROJECT_ROOT / "shared").rglob("*.py") if "migrations" not in p.parts)
# A domain function that commits, rolls back or opens its own transaction takes that choice from its caller.
TRANSACTION_CALLS = {"commit", "rollback", "begin"}


def _calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_the_domain_never_commits(path: Path):
    found = [f"line {line}: .{name}()" for line, name in _calls(path) if name in TRANSACTION_CALLS]
    assert not found, f"{path.name} owns a transaction; its caller should: {found}"


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_the_domain_knows_neither_flask_nor_celery(path: Path):
    tree = ast.parse(path.read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not imported & {"flask", "celery", "web", "worker"}
