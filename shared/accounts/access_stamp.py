"""The access stamp: a random value in Redis that changes whenever someone's access may have.

A web process keeps the tokens it has checked in memory (shared.accounts.token_cache), each with the
stamp it read *before* its database check. Every committed change to an API token, user, role
or tenant writes a new stamp, so the next request in any process finds its entry out of date
and checks the database again: a revoked token, a locked user or a role without users.manage
is refused at once, everywhere. The stamp is random, not a counter, so a Redis restarted empty
can never bring an old value back.

`watch(factory, redis)` finds those changes on every session of the factory: the unit of
work's changed and deleted objects, and bulk UPDATE and DELETE statements run through it.
A statement that changes nobody's access (a token's last use, a row lock) says so with the
execution option NEUTRAL.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from shared.models import ApiToken

log = logging.getLogger(__name__)
KEY = "auth:stamp"
NEUTRAL = "access_neutral"  # execution option: this statement changes nobody's access
WATCHED_TABLES = frozenset({"api_tokens", "users", "roles", "tenants"})
_CHANGED = "access_changed"  # session.info flag, set by a watched change, spent by the commit
_TOKEN_USE = frozenset({"last_used_at"})  # a token's own last use changes nobody's access


def current(redis: Redis) -> str | None:
    """The current stamp, making one when Redis has none (a cold start, or Redis restarted empty);
    None when Redis does not answer."""
    try:
        value = _get(redis)
        if value is None:
            redis.set(KEY, _new(), nx=True)  # of two processes starting at once, one stamp wins
            value = _get(redis)
    except RedisError:
        return None
    return value


def _get(redis: Redis) -> str | None:
    value = redis.get(KEY)
    return value.decode() if isinstance(value, bytes) else value


def renew(redis: Redis) -> None:
    """A new stamp: every process checks its tokens in the database again."""
    try:
        redis.set(KEY, _new())
    except RedisError as exc:
        # Entries still expire by themselves within token_cache.RECHECK_SECONDS.
        log.warning("access stamp not renewed error=%s", type(exc).__name__)


def _new() -> str:
    return secrets.token_hex(8)


def watch(factory: sessionmaker[Session], redis: Callable[[], Redis]) -> None:
    """Renew the stamp after each commit of the factory's sessions that changed someone's access;
    `redis` gives the client at that moment (a forked worker replaces its own)."""

    def after_commit(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            renew(redis())  # after the commit: a check made before it sees the old stamp

    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "do_orm_execute", _orm_execute)
    event.listen(factory, "after_commit", after_commit)


def _watched(obj: Any) -> bool:
    return getattr(type(obj), "__tablename__", None) in WATCHED_TABLES


def changes_access(obj: Any) -> bool:
    """Whether flushing this changed object can change someone's access (deleting one always can)."""
    if not _watched(obj):
        return False
    if isinstance(obj, ApiToken):
        changed = {a.key for a in inspect(obj).attrs if a.history.has_changes()}
        return not changed <= _TOKEN_USE
    return True


def _after_flush(session: Session, _context: Any) -> None:
    # The lists still hold what this flush wrote (SQLAlchemy's after_flush contract).
    deleted = any(_watched(obj) for obj in session.deleted)
    changed = (obj for obj in session.dirty if session.is_modified(obj, include_collections=False))
    if deleted or any(changes_access(obj) for obj in changed):
        session.info[_CHANGED] = True


def _orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.execution_options.get(NEUTRAL):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED_TABLES:
        state.session.info[_CHANGED] = True
