"""Open event streams per user and per tenant, counted across every web process (API.md "Fair use").

Each open stream holds a lease: one member in its user's sorted set and one in its tenant's, scored
by the moment it lapses. The process serving the stream renews its leases while the stream is open
and removes them when it ends; a process that dies leaves leases that lapse by themselves, so a
crash never leaks a place. Admission is one Lua script, so two processes cannot both take the last
place.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from redis import Redis

LEASE_SECONDS = 60  # renewed every RENEW_SECONDS while the stream lives
RENEW_SECONDS = 20
RETRY_AFTER_SECONDS = 15  # what a refused client is told: streams end as their imports do

# KEYS: user set, tenant set. ARGV: now, lapse, member, user limit, tenant limit.
# Answers 0 (admitted), 1 (the user is full) or 2 (the tenant is full).
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 0
"""


@dataclass(frozen=True)
class Lease:
    """One open stream's place in its user's and its tenant's count."""

    user_key: str
    tenant_key: str
    member: str


class StreamsFull(Exception):
    """The user or the tenant holds as many open streams as it may."""

    def __init__(self, whose: str, limit: int) -> None:
        super().__init__(whose)
        self.whose = whose
        self.limit = limit


def _keys(tenant_id: int, user_id: str) -> tuple[str, str]:
    return f"streams:user:{tenant_id}:{user_id}", f"streams:tenant:{tenant_id}"


def acquire(client: Redis, tenant_id: int, user_id: str, per_user: int, per_tenant: int) -> Lease:
    """A place for one more open stream, or StreamsFull naming whose limit it is."""
    user_key, tenant_key = _keys(tenant_id, user_id)
    member = uuid.uuid4().hex
    now = time.time()
    answer = client.eval(
        _ADMIT, 2, user_key, tenant_key, now, now + LEASE_SECONDS, member, per_user, per_tenant,
        LEASE_SECONDS * 2,
    )  # fmt: skip
    if answer == 1:
        raise StreamsFull("user", per_user)
    if answer == 2:
        raise StreamsFull("tenant", per_tenant)
    return Lease(user_key, tenant_key, member)


def renew(client: Redis, leases: Iterable[Lease]) -> None:
    """Push the lapse of these open streams' leases forward (XX: a released one stays released)."""
    lapse = time.time() + LEASE_SECONDS
    pipe = client.pipeline(transaction=False)
    for lease in leases:
        for key in (lease.user_key, lease.tenant_key):
            pipe.zadd(key, {lease.member: lapse}, xx=True)
            pipe.expire(key, LEASE_SECONDS * 2)
    pipe.execute()


def release(client: Redis, leases: Iterable[Lease]) -> None:
    """Give these streams' places back, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for lease in leases:
        pipe.zrem(lease.user_key, lease.member)
        pipe.zrem(lease.tenant_key, lease.member)
    pipe.execute()


def open_count(client: Redis, tenant_id: int, user_id: str | None = None) -> int:
    """How many streams the tenant (or one of its users) holds open now."""
    user_key, tenant_key = _keys(tenant_id, user_id or "")
    return int(client.zcount(user_key if user_id else tenant_key, time.time(), "+inf"))
