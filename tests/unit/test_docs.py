"""The docs name what exists: every path they put in backticks is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# A path of the repository in backticks: `shared/imports/creation.py`, `tests/support/`, `web/contract/`.
_PATH = re.compile(r"`((?:shared|web|worker|tests|scripts|docs|deploy)/[\w./-]*)`")


def test_the_readme_is_a_newcomers_page():
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, "keep README.md short; the rest belongs in docs/"
    for page in ("architecture", "operations", "api", "benchmarks"):
        assert f"docs/{page}.md" in "\n".join(lines), f"README.md links docs/{page}.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_path_a_page_names_exists(page: Path):
    named = {m.group(1).rstrip(".") for m in _PATH.finditer(page.read_text())}
    missing = sorted(p for p in named if "*" not in p and not (PROJECT_ROOT / p).exists())
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
