"""Slots: Celery messages that carry no work, only a permission for one worker process to claim the
next unit of work in fair order (shared/imports/scheduling.py).

The web offers slots for work it committed, a worker offers a successor while work remains, a
worker that joins (or sees another lapse) offers its own processes' worth, and beat's sweep offers
them again for work nobody holds. Both sides send by name, through this module, and plan for the
processes the live workers announce (shared/imports/capacity.py).
"""

from __future__ import annotations

import logging

from celery import Celery
from redis import Redis
from redis.exceptions import RedisError

from shared.imports.capacity import Fleet, fleet
from shared.settings import Settings

log = logging.getLogger(__name__)
SLOT = "imports.slot"  # the task's name: worker/tasks.py registers it, everyone else sends it


def send_slot(celery: Celery) -> None:
    """Send one slot message; raises what the broker raised (the caller says the queue is down)."""
    celery.send_task(SLOT)


def offer_slots(celery: Celery, count: int) -> None:
    """Send `count` slot messages for work already committed; a broker that does not answer now only
    delays it (the sweep offers slots again for work nobody holds)."""
    try:
        for _ in range(count):
            send_slot(celery)
    except Exception as exc:  # kombu raises its own errors; the work waits in the database
        log.warning("could not offer slots count=%d error=%s", count, type(exc).__name__)


def fleet_now(redis: Redis, settings: Settings) -> Fleet:
    """The workers of the queue now; none known while Redis does not answer (slots wait for it anyway)."""
    try:
        return fleet(redis, settings.task_queue)
    except RedisError as exc:
        log.warning("could not read the workers' announcements error=%s", type(exc).__name__)
        return Fleet()
