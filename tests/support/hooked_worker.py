"""The project's Celery worker with test hooks in the chunk transaction.

    celery -A tests.support.hooked_worker worker

SQLAlchemy ORM listeners watch every flush for ImportRow objects turning "created";
environment variables choose what happens at the first such flush of chunk N:

- HOOK_FAIL_CHUNK=N  raise HookFailure: not an infrastructure error, so the task is not
  retried and the job ends failed (worker/tasks.py run_slot); earlier chunks stay committed.
- HOOK_HOLD_CHUNK=N  set the Redis key HOOK_MARKER to this process's id, then block with the
  chunk's transaction open until the key HOOK_RELEASE exists or the process is killed. Only
  the process that sets the marker first holds, so the redelivered chunk goes through.
- HOOK_HOLD_SLOT=N  the same hold, at the start of this process's N-th slot task (before it
  claims anything, so no transaction is open and others may write meanwhile).
- HOOK_REDIS_URL (default REDIS_URL), HOOK_MARKER (default "hook:held"), HOOK_RELEASE
  (default "hook:release").
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import task_prerun
from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from shared.models import ImportRow
from worker import app
from worker.slots import SLOT

__all__ = ["HookFailure", "app"]

HOLD_LIMIT_SECONDS = 200  # below the task's soft time limit: a forgotten hold ends on its own
_redis: Redis | None = None
_slots_started = 0


class HookFailure(RuntimeError):
    """The failure HOOK_FAIL_CHUNK injects."""


def _number(name: str) -> int | None:
    raw = os.environ.get(name, "")
    return int(raw) if raw else None


def _status(row: ImportRow) -> str:
    return str(getattr(row.status, "value", row.status))  # a plain string or a string enum


def _created_chunks(session: Session) -> set[int]:
    """Chunks of the ImportRow objects this flush writes as created."""
    return {
        obj.chunk
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, ImportRow) and obj.chunk is not None and _status(obj) == "created"
    }


def _client() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(os.environ.get("HOOK_REDIS_URL") or os.environ["REDIS_URL"])
    return _redis


def _hold() -> None:
    client = _client()
    marker = os.environ.get("HOOK_MARKER", "hook:held")
    release = os.environ.get("HOOK_RELEASE", "hook:release")
    if not client.set(marker, os.getpid(), nx=True):
        return  # held once already: this is the redelivered chunk
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not client.exists(release):
        if time.monotonic() > deadline:
            raise HookFailure("held too long: nobody killed or released this process")
        time.sleep(0.05)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    chunks = _created_chunks(session)
    if not chunks:
        return
    if _number("HOOK_FAIL_CHUNK") in chunks:
        raise HookFailure("injected failure in the chunk's transaction")
    if _number("HOOK_HOLD_CHUNK") in chunks:
        _hold()


event.listen(Session, "before_flush", _before_flush)


@task_prerun.connect
def _before_slot(task: Any = None, **_kwargs: Any) -> None:
    global _slots_started
    if getattr(task, "name", None) != SLOT:
        return
    _slots_started += 1
    if _number("HOOK_HOLD_SLOT") == _slots_started:
        _hold()
