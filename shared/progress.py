"""Live progress of an import in Redis: a hash for readers, a channel for streams.

The database holds the final truth; Redis only speeds up what the pages see.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
TTL_SECONDS = 7 * 24 * 3600
COUNT_FIELDS = ("total", "processed", "created", "duplicates", "errors", "percent")


def hash_key(job_id: str) -> str:
    """The Redis hash holding a job's counts."""
    return f"import:{job_id}:progress"


def channel(job_id: str) -> str:
    """The Redis channel a job's changes are published on."""
    return f"import:{job_id}:events"


def publish(redis: Redis, status: dict[str, Any]) -> None:
    """Store the counts and tell listeners; a Redis outage never fails the job."""
    job_id = status["id"]
    fields = {name: status[name] for name in COUNT_FIELDS} | {"status": status["status"]}
    try:
        pipe = redis.pipeline()
        pipe.hset(hash_key(job_id), mapping=fields)
        pipe.expire(hash_key(job_id), TTL_SECONDS)
        pipe.publish(channel(job_id), json.dumps(status, default=str))
        pipe.execute()
    except RedisError as exc:
        log.warning("progress not published job=%s error=%s", job_id, type(exc).__name__)


def read(redis: Redis, job_id: str) -> dict[str, Any] | None:
    """The last published counts, or None when Redis has none (or does not answer)."""
    try:
        raw = redis.hgetall(hash_key(job_id))
    except RedisError:
        return None
    if not raw:
        return None
    decoded = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    counts: dict[str, Any] = {name: int(decoded.get(name, 0)) for name in COUNT_FIELDS}
    counts["status"] = decoded.get("status", "queued")
    return counts
