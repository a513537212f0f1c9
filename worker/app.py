"""The Celery app, found by `celery -A worker`; configured from Settings when first used."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from shared.settings import Settings
from worker import runtime

TASK_MODULES = ["worker.tasks", "worker.mail"]
# Beat's tasks, by name (worker/tasks.py registers them).
SWEEP = "imports.sweep"
PURGE = "system.purge_expired_credentials"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for these settings."""
    return {
        "broker_url": settings.redis_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        # Workers consume this queue; separate deployments (or test runs) sharing a Redis use their own.
        "task_default_queue": settings.task_queue,
        # A task is acknowledged only once done, and comes back if its worker dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Chunks are short, so a lost one may come back within minutes, not the default hour.
        "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "task_soft_time_limit": 240,
        "task_time_limit": 280,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "beat_schedule": {
            # What retention no longer keeps (files, row data, history), temporary passwords past
            # retention, expired tokens, idle sessions, expired login codes.
            "purge-expired-credentials": {
                "task": PURGE,
                "schedule": timedelta(seconds=settings.purge_seconds),
            },
            # Work nobody holds (a lost message, a dead worker) is offered again within minutes.
            "sweep": {"task": SWEEP, "schedule": timedelta(seconds=settings.sweep_seconds)},
        },
        "timezone": "UTC",
    }


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for these settings; without them, read from the environment when first needed."""
    celery = Celery("worker", include=TASK_MODULES)
    if settings is not None:
        celery.conf.update(celery_config(settings))
    else:
        # Evaluated on first access to the configuration (the worker's start), not at import.
        celery.add_defaults(lambda: celery_config(runtime.settings()))
    return celery


app = create_celery()


@worker_process_init.connect
def _fresh_connections_per_process(**_kwargs: Any) -> None:
    runtime.after_fork()
