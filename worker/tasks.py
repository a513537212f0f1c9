"""Celery tasks: thin wrappers that open a session and call one domain function."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from shared import one_time_codes, processing
from shared import sessions as web_sessions
from shared.auth import purge_expired_tokens
from shared.errors import DomainError
from shared.jobs import purge_expired_passwords, status_from_db
from shared.models import ImportJob
from shared.progress import publish
from worker.app import app
from worker.context import sessions, settings

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
            processing.fail_job(sessions(), job_id, processing.describe_failure(exc))
            _publish(job_id)


def _redis() -> Redis:
    return Redis.from_url(settings().redis_url, socket_timeout=5, socket_connect_timeout=2)


def _publish(job_id: str) -> None:
    with sessions()() as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            publish(_redis(), status_from_db(session, job))


@app.task(name="system.ping")
def ping() -> str:
    """A trivial task that proves a worker consumes from the broker."""
    return "pong"


@app.task(name="imports.validate", base=ImportTask, bind=True)
def validate(self: Task, job_id: str) -> None:
    """Validate every row of the job, then spread its chunks over the workers."""
    try:
        result = processing.validate_job(sessions(), settings(), job_id)
    except DomainError as exc:  # the file or mapping cannot be processed: no retry helps
        processing.fail_job(sessions(), job_id, exc.message)
        _publish(job_id)
        return
    _publish(job_id)
    for chunk in result.chunks:
        process_chunk.delay(job_id, chunk)


@app.task(name="imports.process_chunk", base=ImportTask, bind=True)
def process_chunk(self: Task, job_id: str, chunk: int) -> None:
    """Create one chunk's users (safe to run twice)."""
    processing.process_chunk(sessions(), settings(), job_id, chunk)
    _publish(job_id)


@app.task(name="imports.purge_expired")
def purge_expired() -> int:
    """Destroy temporary passwords past retention, expired tokens, sessions and codes; requeue stale jobs."""
    with sessions().begin() as session:
        count = purge_expired_passwords(session, settings())
        purge_expired_tokens(session)
        web_sessions.purge_expired(session)
        one_time_codes.purge_expired(session)
        stale = processing.stale_jobs(session, STALE_AFTER)
    for job_id in stale:
        log.warning("requeueing quiet job=%s", job_id)
        validate.delay(job_id)
    return count
