"""What an operator sees of the work waiting: units per state and how old the oldest pending one is.

Read from work_items when Prometheus scrapes (the order of work lives there, not in Celery's
queue), by whichever endpoint is scraped: the web and every worker host report the same values,
so queries take their max().
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import WorkItem, WorkStatus, utcnow
from shared.timestamps import aware

log = logging.getLogger(__name__)
STATES = (WorkStatus.PENDING, WorkStatus.CLAIMED)


class BacklogCollector:
    """`user_import_work_units{state}` and `user_import_oldest_pending_unit_age_seconds`, at scrape."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            with self.sessions() as session:
                counts = dict(
                    session.execute(
                        select(WorkItem.status, func.count())
                        .where(WorkItem.status.in_(STATES))
                        .group_by(WorkItem.status)
                    ).all()
                )
                oldest = session.scalar(
                    select(func.min(WorkItem.created_at)).where(WorkItem.status == WorkStatus.PENDING)
                )
        except Exception as exc:  # a scrape must still answer; the series are absent meanwhile
            log.warning("backlog metrics unavailable error=%s", type(exc).__name__)
            return
        units = GaugeMetricFamily(
            "user_import_work_units", "Units of import work, by state", labels=["state"]
        )
        for state in STATES:
            units.add_metric([state.value], counts.get(state, 0))
        yield units
        age = (utcnow() - aware(oldest)).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "user_import_oldest_pending_unit_age_seconds",
            "Age of the oldest unit of work waiting for a worker (0: none waits)",
            value=max(age, 0.0),
        )
