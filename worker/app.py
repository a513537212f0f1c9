"""The Celery app, found by `celery -A worker`; configured from Settings when first used."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any, ClassVar

from celery import Celery, bootsteps
from celery.signals import worker_init, worker_process_init
from redis.exceptions import RedisError

from shared import metrics
from shared.imports import capacity, scheduling
from shared.settings import Settings
from worker import observability, runtime
from worker.slots import offer_slots

_SIGNALS = observability  # imported for the signals it connects (logging, request ids, /metrics)
log = logging.getLogger(__name__)

TASK_MODULES = ["worker.tasks", "worker.mail"]
# Beat's tasks, by name (worker/tasks.py registers them).
SWEEP = "imports.sweep"
PURGE = "system.purge_expired_credentials"
INVITATIONS_DUE = "imports.invitations_due"


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
    celery.steps["worker"].add(Announcement)
    if settings is not None:
        celery.conf.update(celery_config(settings))
    else:
        # Evaluated on first access to the configuration (the worker's start), not at import.
        celery.add_defaults(lambda: celery_config(runtime.settings()))
    return celery


class Announcement(bootsteps.StartStopStep):
    """The worker's main process announces its process count while it lives (shared/imports/capacity.py),
    from a thread. It offers that many slots when it joins (or Redis came back empty) while work waits,
    and when another worker's announcement lapses (its claims wait for takeover)."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **_kwargs: Any) -> None:
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        node = runtime.node() or runtime.name_node(worker.hostname)
        args = (worker.app, node, int(worker.concurrency))
        self.thread = threading.Thread(target=self._announce, args=args, name="announce", daemon=True)
        self.thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        node = runtime.node()
        if node is not None:
            try:
                capacity.withdraw(runtime.redis(), runtime.settings().task_queue, node)
            except RedisError:
                pass  # its announcement lapses on its own

    def _announce(self, celery: Celery, node: str, processes: int) -> None:
        queue = runtime.settings().task_queue
        lapsed: frozenset[str] = frozenset()
        failing = False
        while not self.stopping.is_set():
            try:
                joined = capacity.announce(runtime.redis(), queue, node, processes)
                now = capacity.fleet(runtime.redis(), queue).lapsed
                if (joined and _work_waits()) or now - lapsed:
                    log.info("announced node=%s processes=%d joined=%s lapsed=%d", node, processes, joined,
                             len(now - lapsed))  # fmt: skip
                    offer_slots(celery, processes)
                lapsed, failing = now, False
            except Exception as exc:  # Redis or the database away: announce again at the next beat
                if not failing:
                    log.warning("could not announce node=%s error=%s", node, type(exc).__name__)
                failing = True
            self.stopping.wait(capacity.ANNOUNCE_SECONDS)


def _work_waits() -> bool:
    with runtime.sessions()() as session:
        return scheduling.waiting(session)


app = create_celery()


@worker_init.connect
def _name_the_worker(sender: Any, **_kwargs: Any) -> None:
    runtime.name_node(sender.hostname)  # before the pool forks: its processes inherit the name


@worker_process_init.connect
def _fresh_connections_per_process(**_kwargs: Any) -> None:
    runtime.after_fork()
    metrics.after_fork()
