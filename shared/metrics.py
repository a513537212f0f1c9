"""The Prometheus metrics of API.md "Metrics and request ids", and the few more an operator needs.

Declared once here; the web serves them at /metrics (web/observability.py) and each worker host at
WORKER_METRICS_PORT (worker/observability.py). With PROMETHEUS_MULTIPROC_DIR set (gunicorn's
processes, Celery's pool) prometheus-client keeps each process's values in a file of that
directory and the endpoint adds them up, so a counter outlives the process that counted it.

Labels are bounded: outcomes, statuses, services, route templates; never a tenant, user or job id.
Counts of what a transaction did are added when it commits (`on_commit`), so a transaction rolled
back and retried counts once. docs/operations.md lists every metric.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from shared.models import ImportRow, RowStatus

# The _created series double every counter's lines and no dashboard here reads them.
disable_created_metrics()
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client opens its files there as the metrics below are declared (compose names a
    # directory in /tmp that no one made).
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

ROW_OUTCOMES = ("created", "duplicate", "error", "cancelled")
JOB_ENDS = ("succeeded", "failed", "cancelled", "undone")
SERVICES = ("database", "redis")
LOGIN_OUTCOMES = ("succeeded", "wrong_password", "wrong_code", "refused")
RESULT_FILES = ("errors", "success")
# Claims are a few queries; hashes take tens of milliseconds at the production cost.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ROWS = Counter("user_import_rows", "Rows of finished imports, by outcome", ["outcome"])
JOBS = Counter("user_import_jobs", "Imports that ended, by how", ["status"])
CLAIM_SECONDS = Histogram(
    "user_import_claim_seconds", "Time a slot took to claim its unit of work in fair order", buckets=_FAST
)
HASH_SECONDS = Histogram(
    "user_import_password_hash_seconds", "Time one argon2id password hash took", buckets=_FAST
)
EVENT_STREAMS = Gauge(
    "user_import_event_streams", "Progress event streams open now", multiprocess_mode="livesum"
)
EVENT_STREAM_CAPACITY = Gauge(
    "user_import_event_stream_capacity",
    "Streams the web processes can hold (a socket each, within their open-files limits)",
    multiprocess_mode="livesum",
)
OUTAGE_RETRIES = Counter(
    "user_import_outage_retries", "Slot retries after the database or Redis did not answer", ["service"]
)
SWEEP_REOFFERS = Counter("user_import_sweep_reoffers", "Slots the sweep offered again for work nobody held")
LOGINS = Counter("user_import_logins", "Login attempts (pages and API), by outcome", ["outcome"])
LOCKOUTS = Counter("user_import_lockouts", "Accounts locked after too many failed logins")
RESULT_DOWNLOADS = Counter("user_import_result_downloads", "Result files downloaded, by file", ["file"])
PURGED_KINDS = ("passwords", "upload_contents", "row_data", "history")  # the purge's steps (worker/tasks.py)
PURGED = Counter("user_import_purged", "What the purge removed as retention ran out, by step", ["what"])
HTTP_REQUESTS = Counter("http_requests", "HTTP answers, by method, route template and status",
                        ["method", "route", "status"])  # fmt: skip
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to the answer's headers, by method and route template",
    ["method", "route"],
    buckets=_HTTP,
)

# Every series of API.md exists from start-up on, at zero until something happens.
for _labels, _metric in [(ROW_OUTCOMES, ROWS), (JOB_ENDS, JOBS), (SERVICES, OUTAGE_RETRIES),
                         (LOGIN_OUTCOMES, LOGINS), (RESULT_FILES, RESULT_DOWNLOADS),
                         (PURGED_KINDS, PURGED)]:  # fmt: skip
    for _value in _labels:
        _metric.labels(_value)

# Audit actions that are also counted (shared/audit.py records them).
_AUDITED: dict[str, Callable[[dict[str, object]], None]] = {
    "login.succeeded": lambda _d: LOGINS.labels("succeeded").inc(),
    "login.failed": lambda d: LOGINS.labels(
        "wrong_code" if d.get("reason") == "code" else "wrong_password"
    ).inc(),
    "login.refused": lambda _d: LOGINS.labels("refused").inc(),
    "account.locked": lambda _d: LOCKOUTS.inc(),
}


def on_commit(session: Session, count: Callable[[], None]) -> None:
    """Run `count` once the session's transaction commits; forget it if it rolls back."""
    session.info.setdefault("metrics_on_commit", []).append(count)


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for count in session.info.pop("metrics_on_commit", []):
        count()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop("metrics_on_commit", None)


def count_audited(session: Session, action: str, details: dict[str, object] | None) -> None:
    """Count an audit action that is also a metric (logins, lockouts), when it commits."""
    count = _AUDITED.get(action)
    if count is not None:
        on_commit(session, lambda: count(details or {}))


def count_job_end(session: Session, job_id: str, status: str, rows: bool = True) -> None:
    """Count an import that ended (and its rows by outcome) when the ending commits."""
    outcomes: dict[str, int] = {}
    if rows:
        found = session.execute(
            select(ImportRow.status, func.count())
            .where(ImportRow.job_id == job_id, ImportRow.status.in_([RowStatus(o) for o in ROW_OUTCOMES]))
            .group_by(ImportRow.status)
        ).all()
        outcomes = {str(outcome): n for outcome, n in found}

    def count() -> None:
        JOBS.labels(status).inc()
        for outcome, n in outcomes.items():
            ROWS.labels(outcome).inc(n)

    on_commit(session, count)


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header is `Bearer <METRICS_TOKEN>` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR when set: the processes of this host count into its files."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def clear_multiprocess_dir() -> None:
    """Empty the directory at a service's start, so a new run starts from zero (the parent process
    calls it before it forks its children; its own files stay)."""
    path = multiprocess_dir()
    if path is None:
        return
    os.makedirs(path, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for name in os.listdir(path):
        if name.endswith(".db") and not name.endswith(own):
            os.remove(os.path.join(path, name))


def after_fork() -> None:
    """In a forked child: write its values' files now, so its series exist before it counts anything."""
    JOBS.labels(JOB_ENDS[0]).inc(0)  # the first touch after a fork gives every value a file of this pid


def mark_process_dead(pid: int) -> None:
    """A process ended: its live gauges (open streams) stop counting; its counters stay."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


class _Registry:
    """What this process answers: its own values, or every process's of the multiprocess directory."""

    def __init__(self, extra: Iterable[Collector]) -> None:
        self.extra = list(extra)

    def collect(self) -> Iterable[object]:
        path = multiprocess_dir()
        if path is None:
            yield from REGISTRY.collect()
        else:
            yield from multiprocess.MultiProcessCollector(None, path).collect()
        for collector in self.extra:
            yield from collector.collect()


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of this host's metrics, plus those computed at scrape time (`extra`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Registry(extra))  # type: ignore[arg-type]
    return generate_latest(registry)
