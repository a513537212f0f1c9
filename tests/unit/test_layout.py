"""House rules that a reader would otherwise have to check by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import PROJECT_ROOT

SHARED = sorted(p for p in (PROJECT_ROOT / "shared").rglob("*.py") if "migrations" not in p.parts)
CONTEXTS = sorted(
    p.parent.name for p in (PROJECT_ROOT / "shared").glob("*/__init__.py") if p.parent.name != "migrations"
)
# Which context packages each may import (every one may import the top level of shared). The arrows
# run one way, so no cycle can appear: files <- mapping <- imports; accounts <- dialer <- imports.
MAY_IMPORT: dict[str, set[str]] = {
    "files": set(),
    "accounts": set(),
    "mapping": {"files"},
    "dialer": {"accounts", "mapping"},
    "imports": {"files", "mapping", "accounts", "dialer"},
}
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


def _shared_imports(path: Path) -> list[tuple[int, str]]:
    """(line, first part below shared) of every `from shared... import` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "shared":
            parts = node.module.split(".")
            below = parts[1:2] or [alias.name for alias in node.names]
            found += [(node.lineno, name) for name in below]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("shared.")]
    return found


def _context_of(path: Path) -> str | None:
    """The context package a module of shared/ belongs to, or None at the top level."""
    parts = path.relative_to(PROJECT_ROOT / "shared").parts
    return parts[0] if len(parts) > 1 else None


def test_every_context_package_declares_its_arrows():
    assert sorted(MAY_IMPORT) == CONTEXTS


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_imports_between_contexts_run_one_way(path: Path):
    context = _context_of(path)
    allowed = {context} | MAY_IMPORT.get(context, set()) if context else set()
    wrong = [
        f"line {line}: shared.{name}"
        for line, name in _shared_imports(path)
        if name in MAY_IMPORT and name not in allowed
    ]
    where = f"shared.{context}" if context else "the top level of shared"
    assert not wrong, f"{where} may import only {sorted(allowed) or 'the top level'}: {wrong}"


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_context_package_holds_no_code(context: str):
    """Its __init__ is a docstring only, so importing one module never drags in the others."""
    tree = ast.parse((PROJECT_ROOT / "shared" / context / "__init__.py").read_text())
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), "only a docstring"


def test_the_top_level_of_shared_stays_small():
    modules = [p.name for p in (PROJECT_ROOT / "shared").glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 12, sorted(modules)


def test_no_test_imports_another_test_module_or_conftest():
    wrong = []
    for path in sorted((PROJECT_ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.split(".")[-1]
                if node.module.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                    wrong.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.module}")
    assert not wrong, "helpers belong in tests/support/: " + ", ".join(wrong)
