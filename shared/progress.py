"""Live progress of an import in Redis: the last status for readers, a channel for streams.

The database holds the final truth; Redis answers the many status reads while a job runs.
Writes are monotonic (one Lua script compares before it writes), so a late or replayed
publish never makes the progress a reader sees go backwards.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from shared.models import JobStatus

log = logging.getLogger(__name__)
TTL_SECONDS = 7 * 24 * 3600
# A running job's cached status older than this is checked against the database (Redis may
# have been down, or restored from an older file, while the job moved on).
FRESH_SECONDS = 10.0
# A status only ever moves up this order; within a state, `processed` only grows.
RANK: dict[str, int] = {
    JobStatus.QUEUED: 0,
    JobStatus.VALIDATING: 1,
    JobStatus.RUNNING: 2,
    JobStatus.SUCCEEDED: 3,
    JobStatus.FAILED: 3,
    JobStatus.CANCELLED: 3,
}
_PUBLISH = """
local rank, processed = tonumber(ARGV[1]), tonumber(ARGV[2])
local old_rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '-1')
local old_processed = tonumber(redis.call('HGET', KEYS[1], 'processed') or '-1')
if rank < old_rank or (rank == old_rank and processed < old_processed) then
  return 0
end
redis.call('HSET', KEYS[1], 'rank', rank, 'processed', processed,
           'tenant', ARGV[3], 'at', ARGV[4], 'body', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', KEYS[2], ARGV[5])
return 1
"""


def hash_key(job_id: str) -> str:
    """The Redis hash holding a job's last status."""
    return f"import:{job_id}:progress"


def channel(job_id: str) -> str:
    """The Redis channel a job's changes are published on."""
    return f"import:{job_id}:events"


def publish(redis: Redis, status: dict[str, Any], tenant_id: int) -> bool:
    """Store the status and tell listeners, unless an equal or newer one is there; never raises."""
    job_id = status["id"]
    body = json.dumps(status, default=str)
    try:
        return bool(
            redis.eval(
                _PUBLISH,
                2,
                hash_key(job_id),
                channel(job_id),
                RANK.get(status["status"], 9),
                status["processed"],
                tenant_id,
                time.time(),
                body,
                TTL_SECONDS,
            )
        )
    except RedisError as exc:
        log.warning("progress not published job=%s error=%s", job_id, type(exc).__name__)
        return False


def read(redis: Redis, job_id: str, tenant_id: int) -> dict[str, Any] | None:
    """The last published status if it is the tenant's and can be trusted as is; else None."""
    body = read_body(redis, job_id, tenant_id)
    return json.loads(body) if body is not None else None


def read_body(redis: Redis, job_id: str, tenant_id: int) -> str | None:
    """The last published status as its JSON text (served as is), or None; see read()."""
    try:
        found = redis.hmget(hash_key(job_id), "tenant", "at", "rank", "body")
    except RedisError:
        return None
    tenant, at, rank, body = (v.decode() if isinstance(v, bytes) else v for v in found)
    if body is None or tenant != str(tenant_id):
        return None
    if int(rank) < RANK[JobStatus.SUCCEEDED] and time.time() - float(at) > FRESH_SECONDS:
        return None  # a quiet running job: the database says whether it moved on
    return body
