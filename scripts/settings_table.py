"""Print the settings table of docs/operations.md, written from shared/settings.py:
`python -m scripts.settings_table` (tests/unit/test_settings.py checks that the page holds it)."""

from __future__ import annotations

from shared.settings import markdown_table

if __name__ == "__main__":
    print(markdown_table())
