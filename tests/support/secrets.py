"""The secrets the suite used: tests/e2e/test_logs.py searches every log the suite wrote for them."""

from __future__ import annotations

from tests.support.accounts import ADMIN_PASSWORD, NEW_PASSWORD, TEMP_PASSWORD

SECRETS_USED: set[str] = {ADMIN_PASSWORD, TEMP_PASSWORD, NEW_PASSWORD}


def remember_secret(*values: str) -> None:
    """Note secrets a test handled: tokens, temporary passwords, one-time codes, keys."""
    SECRETS_USED.update(v for v in values if v)
