"""The tokens one process has checked lately, so that most API requests skip the database.

An entry is trusted only while three things hold: the access stamp read with this request is
the one read before the entry's database check (no token, user, role or tenant changed since,
shared.accounts.access_stamp), the verdict still holds (the token has not expired and its last use is
not yet due to be written), and it was checked less than RECHECK_SECONDS ago (a bound for a
change the stamp missed: one made by hand in SQL, or a stamp Redis failed to take). Without a
stamp (Redis down) nothing is trusted. Only live tokens are kept; a refused one is asked again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from shared.accounts.tokens import TokenCaller

RECHECK_SECONDS = 10.0
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class _Entry:
    caller: TokenCaller
    stamp: str
    holds_until: float  # epoch seconds: expiry, or the next write of its last use
    checked_at: float  # monotonic seconds


class TokenCache:
    """Live tokens by digest; safe to share between a process's threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.max_entries = max_entries
        self.recheck_seconds = recheck_seconds
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # for writers only: a dict read is atomic

    def get(self, digest: str, stamp: str | None) -> TokenCaller | None:
        """The cached caller, if its entry may still be trusted under this stamp."""
        entry = self._entries.get(digest)
        if entry is None or stamp is None or entry.stamp != stamp:
            return None
        if time.time() >= entry.holds_until or time.monotonic() - entry.checked_at >= self.recheck_seconds:
            return None
        return entry.caller

    def put(self, digest: str, stamp: str | None, caller: TokenCaller) -> None:
        """Keep a caller just checked in the database, under the stamp read before that check."""
        if stamp is None:
            return
        caller = replace(caller, touched=False)  # its last use is written: a hit writes nothing
        entry = _Entry(caller, stamp, caller.holds_until.timestamp(), time.monotonic())
        with self._lock:
            self._entries.pop(digest, None)  # re-inserted last: the oldest entry goes first
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[digest] = entry

    def drop(self, digest: str) -> None:
        """Forget a token (this process revoked it)."""
        with self._lock:
            self._entries.pop(digest, None)

    def __len__(self) -> int:
        return len(self._entries)
