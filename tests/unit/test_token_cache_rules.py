"""The token cache trusts an entry only under its own stamp, while the verdict holds, and briefly."""

from __future__ import annotations

import time
from datetime import timedelta

from shared.accounts.token_cache import TokenCache
from shared.accounts.tokens import TokenCaller
from shared.models import utcnow


def caller(
    user_id: int = 1, holds_for: timedelta = timedelta(minutes=1), touched: bool = False
) -> TokenCaller:
    return TokenCaller(user_id, 7, True, utcnow() + holds_for, touched)


def test_an_entry_is_trusted_only_under_the_stamp_read_before_its_check() -> None:
    cache = TokenCache()
    cache.put("d1", "stamp-a", caller())
    assert cache.get("d1", "stamp-a") is not None
    assert cache.get("d1", "stamp-b") is None  # someone's access changed since
    assert cache.get("d1", None) is None  # Redis did not answer: nothing is trusted
    assert cache.get("d2", "stamp-a") is None


def test_without_a_stamp_nothing_is_kept() -> None:
    cache = TokenCache()
    cache.put("d1", None, caller())
    assert len(cache) == 0


def test_an_entry_ends_when_the_token_expires_or_its_last_use_is_due() -> None:
    cache = TokenCache()
    cache.put("gone", "s", caller(holds_for=timedelta(seconds=-1)))
    assert cache.get("gone", "s") is None


def test_an_entry_is_checked_again_after_the_recheck_period() -> None:
    cache = TokenCache(recheck_seconds=0.05)
    cache.put("d1", "s", caller())
    assert cache.get("d1", "s") is not None
    deadline = time.monotonic() + 5
    while cache.get("d1", "s") is not None:  # the period is a monotonic-clock bound
        assert time.monotonic() < deadline
    assert cache.get("d1", "s") is None


def test_a_cached_caller_writes_no_last_use() -> None:
    cache = TokenCache()
    cache.put("d1", "s", caller(touched=True))
    found = cache.get("d1", "s")
    assert found is not None and found.touched is False


def test_the_oldest_entries_go_first_and_a_dropped_token_is_forgotten() -> None:
    cache = TokenCache(max_entries=3)
    for n in range(4):
        cache.put(f"d{n}", "s", caller(n))
    assert len(cache) == 3 and cache.get("d0", "s") is None and cache.get("d3", "s") is not None
    cache.drop("d3")
    assert cache.get("d3", "s") is None
