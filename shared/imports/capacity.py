"""Capacity: the worker processes there are now, as the workers announce them.

Each worker's main process announces its process count under a key of its own that lapses
ANNOUNCE_TTL seconds after its last refresh (every ANNOUNCE_SECONDS), and writes its name on the
queue's roll. The live sum is what chunk planning, the slots offered and the sweep plan for, so
`--scale worker=N` needs no arithmetic; WORKER_PROCESSES only caps it. A name on the roll whose key
lapsed is a worker that died: its claims are taken over at once (shared/imports/scheduling.py), not
after CLAIM_TIMEOUT_SECONDS. A worker that stops cleanly takes its name off the roll.

After Redis restarts empty the roll is empty too, so no claim is taken over for a lapse the roll
cannot tell from the restart: the workers write themselves back at their next refresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis import Redis

ANNOUNCE_SECONDS = 2.0
ANNOUNCE_TTL = 6  # seconds: three refreshes missed and the worker counts as gone
ROLL_KEEP_SECONDS = 3600  # a name stays on the roll this long after its last refresh


def _roll(queue: str) -> str:
    return f"workers:{queue}"


def _key(queue: str, node: str) -> str:
    return f"workers:{queue}:{node}"


@dataclass(frozen=True)
class Fleet:
    """The workers of one queue: live ones with their process counts, and those whose announcement lapsed."""

    live: dict[str, int] = field(default_factory=dict)
    lapsed: frozenset[str] = frozenset()

    def processes(self, cap: int | None = None, fallback: int = 1) -> int:
        """Processes to plan for: the live sum (`fallback` while none has announced itself), at most `cap`."""
        total = sum(self.live.values()) or fallback
        return max(1, min(total, cap) if cap else total)


def announce(redis: Redis, queue: str, node: str, processes: int) -> bool:
    """Refresh this worker's announcement; True when it was not there (it joined, or Redis came back
    empty)."""
    now = time.time()
    pipe = redis.pipeline()
    pipe.set(_key(queue, node), processes, ex=ANNOUNCE_TTL, get=True)
    pipe.zadd(_roll(queue), {node: now})
    pipe.zremrangebyscore(_roll(queue), "-inf", now - ROLL_KEEP_SECONDS)
    pipe.expire(_roll(queue), ROLL_KEEP_SECONDS)
    previous, *_ = pipe.execute()
    return previous is None


def withdraw(redis: Redis, queue: str, node: str) -> None:
    """A worker stopping cleanly leaves the roll: it is gone, not dead (its units were given back)."""
    pipe = redis.pipeline()
    pipe.delete(_key(queue, node))
    pipe.zrem(_roll(queue), node)
    pipe.execute()


def fleet(redis: Redis, queue: str) -> Fleet:
    """Who works this queue now (two round trips, however many workers)."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in redis.zrange(_roll(queue), 0, -1)]
    if not names:
        return Fleet()
    counts = redis.mget([_key(queue, n) for n in names])
    live = {n: int(c) for n, c in zip(names, counts, strict=True) if c is not None}
    return Fleet(live, frozenset(n for n in names if n not in live))
