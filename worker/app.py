"""The Celery app, configured from Settings; found by `celery -A worker`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from shared.settings import Settings


def create_celery(settings: Settings) -> Celery:
    """A Celery app for these settings (the web builds one too, only to send tasks)."""
    celery = Celery("worker", broker=settings.redis_url, include=["worker.tasks", "worker.mail"])
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Workers consume this queue; separate deployments (or test runs) sharing a Redis use their own.
        task_default_queue=settings.task_queue,
        # A task is acknowledged only once done, and comes back if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Chunks are short, so a lost one may come back within minutes, not the default hour.
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=240,
        task_time_limit=280,
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule={
            "purge-expired-passwords": {
                "task": "imports.purge_expired",
                "schedule": timedelta(minutes=15),
            },
        },
        timezone="UTC",
    )
    return celery


settings = Settings.from_env()
app = create_celery(settings)


@worker_process_init.connect
def _fresh_pool_per_process(**_kwargs: Any) -> None:
    # A forked child must not share the parent's database connections.
    from worker.context import dispose_engine

    dispose_engine()
