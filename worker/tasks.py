"""Celery tasks: thin wrappers that own the transactions and call the import's steps.

Each step is a domain function that takes a Session and never commits; here every
`with sessions.begin()` block is one transaction. The run_* functions take the session
factory and settings, so tests call them without a broker.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared import allocation, completion, creation, one_time_codes, row_check
from shared import sessions as web_sessions
from shared.auth import purge_expired_tokens
from shared.errors import DomainError
from shared.jobs import purge_expired_passwords, status_from_db
from shared.models import ImportJob
from shared.progress import publish
from shared.settings import Settings
from worker import runtime
from worker.app import app

log = logging.getLogger(__name__)
# Infrastructure hiccups are retried; row problems never raise (they are data).
RETRY_ON = (OperationalError, DBAPIError, RedisError, ConnectionError)
STALE_AFTER = timedelta(minutes=10)


class ImportTask(Task):
    """Marks the job failed, with a reason, once retries are exhausted or the file is unusable."""

    autoretry_for = RETRY_ON
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 5

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id:
            with runtime.sessions().begin() as session:
                completion.fail_job(session, job_id, completion.describe_failure(exc))
            _publish(job_id)


def _publish(job_id: str) -> None:
    with runtime.sessions()() as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            publish(runtime.redis(), status_from_db(session, job))


def run_validation(sessions: sessionmaker[Session], settings: Settings, job_id: str) -> list[int]:
    """Check every row, then allocate; returns the chunks to create. DomainError: the file is unusable."""
    with sessions.begin() as session:
        if not row_check.begin(session, job_id):
            return creation.pending_chunks(session, job_id)
    # Reading and checking the rows needs no write lock: other writers go on meanwhile.
    with sessions() as session:
        checked = row_check.check_rows(session, settings, job_id)
    with sessions.begin() as session:
        allocated = allocation.allocate(session, checked, settings.chunk_size)
        if allocated is None:
            return creation.pending_chunks(session, job_id)
        if not allocated.chunks:
            completion.finalise(session, job_id)
    return allocated.chunks


def run_chunk(sessions: sessionmaker[Session], settings: Settings, job_id: str, chunk: int) -> int:
    """Create one chunk's users and finish the job if it was the last; returns how many were created."""
    with sessions() as session:
        work = creation.chunk_work(session, job_id, chunk)
    created = 0
    # Hashing is the slow part: done before the transaction opens, so locks are held briefly.
    secrets = creation.make_secrets(settings, work) if work else {}
    with sessions.begin() as session:
        if work is not None:
            created = creation.create_chunk(session, work, secrets)
        completion.finalise(session, job_id)
    return created


@app.task(name="system.ping")
def ping() -> str:
    """A trivial task that proves a worker consumes from the broker."""
    return "pong"


@app.task(name="imports.validate", base=ImportTask, bind=True)
def validate(self: Task, job_id: str) -> None:
    """Validate every row of the job, then spread its chunks over the workers."""
    try:
        chunks = run_validation(runtime.sessions(), runtime.settings(), job_id)
    except DomainError as exc:  # the file or mapping cannot be processed: no retry helps
        with runtime.sessions().begin() as session:
            completion.fail_job(session, job_id, exc.message)
        _publish(job_id)
        return
    _publish(job_id)
    for chunk in chunks:
        process_chunk.delay(job_id, chunk)


@app.task(name="imports.process_chunk", base=ImportTask, bind=True)
def process_chunk(self: Task, job_id: str, chunk: int) -> None:
    """Create one chunk's users (safe to run twice)."""
    run_chunk(runtime.sessions(), runtime.settings(), job_id, chunk)
    _publish(job_id)


@app.task(name="imports.purge_expired")
def purge_expired() -> int:
    """Destroy temporary passwords past retention, expired tokens, sessions and codes; requeue stale jobs."""
    with runtime.sessions().begin() as session:
        count = purge_expired_passwords(session, runtime.settings())
        purge_expired_tokens(session)
        web_sessions.purge_expired(session)
        one_time_codes.purge_expired(session)
        stale = completion.stale_jobs(session, STALE_AFTER)
    for job_id in stale:
        log.warning("requeueing quiet job=%s", job_id)
        validate.delay(job_id)
    return count
