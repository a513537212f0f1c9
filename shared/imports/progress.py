"""Live progress of an import in Redis: the last status for readers, a channel for streams.

The database holds the final truth; Redis answers the many status reads while a job runs.
Writes are monotonic (one Lua script compares before it writes), so a late or replayed
publish never makes the progress a reader sees go backwards. The order compared is
(status rank, processed, password generation, step): an undo moves a final import on to
undoing and undone, and counts `undone` as its step; a regeneration starts a new password
generation and counts `regenerated` as its step.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from shared.accounts import access_stamp
from shared.models import SETTLED_STATES, JobStatus

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
    JobStatus.UNDOING: 4,
    JobStatus.UNDONE: 5,
}
ORDER = ("rank", "processed", "generation", "step")  # compared in this order, each a number
STORED = ("tenant", "at", "settled", "body")  # what a status read takes from the hash
_PUBLISH = """
for i = 1, 4 do
  local new = tonumber(ARGV[i])
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[6 + i]) or '-1')
  if new < old then return 0 end
  if new > old then break end
end
redis.call('HSET', KEYS[1], ARGV[7], ARGV[1], ARGV[8], ARGV[2], ARGV[9], ARGV[3], ARGV[10], ARGV[4],
           'tenant', ARGV[5], 'at', ARGV[6], 'body', ARGV[11], 'settled', ARGV[13])
redis.call('EXPIRE', KEYS[1], ARGV[12])
redis.call('PUBLISH', KEYS[2], ARGV[11])
return 1
"""


def hash_key(job_id: str) -> str:
    """The Redis hash holding a job's last status."""
    return f"import:{job_id}:progress"


def channel(job_id: str) -> str:
    """The Redis channel a job's changes are published on."""
    return f"import:{job_id}:events"


def settled(status: dict[str, Any]) -> bool:
    """Whether nothing moves this status on by itself any more (readers may stop following it)."""
    waiting_mail = (status.get("invitations") or {}).get("pending", 0) > 0  # mails still on their way
    return status["status"] in SETTLED_STATES and not status.get("regenerating") and not waiting_mail


def order(status: dict[str, Any]) -> tuple[int, int, int, int]:
    """Where a status stands in the order publishes may only move up."""
    undoing = status["status"] in (JobStatus.UNDOING, JobStatus.UNDONE)
    step = status.get("undone", 0) if undoing else status.get("regenerated", 0)
    return (
        RANK.get(status["status"], 9),
        status["processed"],
        status.get("password_generation", 0),
        step,
    )


def publish(redis: Redis, status: dict[str, Any], tenant_id: int) -> bool:
    """Store the status and tell listeners, unless a newer one is there; never raises."""
    job_id = status["id"]
    body = json.dumps(status, default=str)
    try:
        return bool(
            redis.eval(
                _PUBLISH,
                2,
                hash_key(job_id),
                channel(job_id),
                *order(status),
                tenant_id,
                time.time(),
                *ORDER,
                body,
                TTL_SECONDS,
                int(settled(status)),  # readers trust a settled status without asking the database
            )
        )
    except RedisError as exc:
        log.warning("progress not published job=%s error=%s", job_id, type(exc).__name__)
        return False


def read(redis: Redis, job_id: str, tenant_id: int) -> dict[str, Any] | None:
    """The last published status if it is the tenant's and can be trusted as is; else None."""
    body = read_body(redis, job_id, tenant_id)
    return json.loads(body) if body is not None else None


def read_with_stamp(redis: Redis, job_id: str) -> tuple[str | None, list[Any] | None]:
    """The access stamp and the job's stored status (for trusted_body) in one round trip; Nones
    when Redis does not answer. A status read by token needs nothing else from Redis."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(access_stamp.KEY)
    pipe.hmget(hash_key(job_id), *STORED)
    try:
        stamp, found = pipe.execute()
    except RedisError:
        return None, None
    return (stamp.decode() if isinstance(stamp, bytes) else stamp), found


def read_body(redis: Redis, job_id: str, tenant_id: int) -> str | None:
    """The last published status as its JSON text (served as is), or None; see read()."""
    try:
        found = redis.hmget(hash_key(job_id), *STORED)
    except RedisError:
        return None
    return trusted_body(found, tenant_id)


def trusted_body(found: list[Any], tenant_id: int) -> str | None:
    """The status text among the STORED fields (however they were read), if it can be trusted as is."""
    tenant, at, is_settled, body = (v.decode() if isinstance(v, bytes) else v for v in found)
    if body is None or tenant != str(tenant_id):
        return None
    if is_settled != "1" and time.time() - float(at) > FRESH_SECONDS:
        return None  # a quiet job still moving: the database says whether it moved on
    return body
