"""Celery tasks: thin wrappers that own the transactions and call the import's steps.

Messages carry no work: `imports.slot` claims the next unit of work from the database in fair
order (shared/imports/scheduling.py), runs it, and offers a successor slot while work remains. Each step
is a domain function that takes a Session and never commits; every `with sessions.begin()` block
here is one transaction. The run_* functions take the session factory and settings, so tests call
them without a broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from celery.exceptions import Retry
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from shared import log_context, mail
from shared.accounts import invitations, one_time_codes, page_sessions
from shared.accounts.tokens import purge_expired_tokens
from shared.db import checkpoint_wal
from shared.errors import DomainError
from shared.imports import (
    allocation,
    completion,
    creation,
    inviting,
    regeneration,
    retention,
    row_check,
    scheduling,
    undo,
)
from shared.imports.capacity import Fleet
from shared.imports.jobs import purge_expired_passwords, status_from_db
from shared.imports.progress import publish
from shared.imports.scheduling import Claim
from shared.metrics import CLAIM_SECONDS, OUTAGE_RETRIES, PURGED, SWEEP_REOFFERS
from shared.models import ImportJob, WorkKind, utcnow
from shared.settings import Settings
from shared.timestamps import aware
from worker import runtime
from worker.app import INVITATIONS_DUE, PURGE, SWEEP, app
from worker.mail import SMTP_TROUBLE
from worker.slots import SLOT, fleet_now, offer_slots

log = logging.getLogger(__name__)
# Infrastructure that may come back: the unit is retried (and never fails its job).
INFRASTRUCTURE = (OperationalError, InterfaceError, PoolTimeout, RedisError, ConnectionError, TimeoutError)
# A retry comes at least a second later, and at most ten seconds after the database or Redis is back.
BACKOFF_FLOOR, BACKOFF_CAP = 1.0, 10.0


def backoff(retries: int) -> float:
    """Seconds before retry n: doubling from a floor (never 0 s), capped, with upward jitter."""
    return min(BACKOFF_CAP, BACKOFF_FLOOR * 2**retries) * random.uniform(1.0, 1.25)


def outage_service(exc: BaseException) -> str:
    """Which service an infrastructure error came from, for the outage metric: database or redis."""
    return "database" if isinstance(exc, OperationalError | InterfaceError | PoolTimeout) else "redis"


def max_retries(settings: Settings) -> int:
    """Enough retries to outlast an outage of OUTAGE_TOLERANCE_SECONDS."""
    waits, total = 0, 0.0
    while total < settings.outage_tolerance_seconds:
        total += min(BACKOFF_CAP, BACKOFF_FLOOR * 2**waits)
        waits += 1
    return waits


def planned_processes(settings: Settings, fleet: Fleet) -> int:
    """The processes the work is planned for: those the live workers announce, at most WORKER_PROCESSES;
    this host's cores while none has announced itself (a test running the steps by hand)."""
    return fleet.processes(settings.worker_processes, fallback=os.cpu_count() or 1)


def run_validation(
    sessions: sessionmaker[Session],
    settings: Settings,
    job_id: str,
    claim: Claim | None = None,
    processes: int | None = None,
) -> list[int]:
    """Check every row, then allocate for `processes` (planned_processes by default); returns the new
    chunks. DomainError: the file is unusable."""
    processes = processes or planned_processes(settings, Fleet())
    with sessions.begin() as session:
        started = row_check.begin(session, job_id)
        if not started and claim is not None:
            scheduling.finish(session, claim)
    if not started:
        return []
    # Reading and checking the rows needs no write lock: other writers go on meanwhile.
    with sessions() as session:
        checked = row_check.check_rows(session, settings, job_id)
    with sessions.begin() as session:
        allocated = allocation.allocate(session, checked, settings.chunk_size, processes)
        if allocated is not None and not allocated.chunks:
            completion.finalise(session, job_id)
        if claim is not None:
            scheduling.finish(session, claim)
    return allocated.chunks if allocated else []


def run_chunk(
    sessions: sessionmaker[Session], settings: Settings, job_id: str, chunk: int, claim: Claim | None = None
) -> int:
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
        if claim is not None:
            scheduling.finish(session, claim)
    return created


def run_undo(sessions: sessionmaker[Session], job_id: str, chunk: int, claim: Claim | None = None) -> int:
    """Remove one chunk's users of an import being undone, and end the undo if it was the last."""
    with sessions.begin() as session:
        removed = undo.undo_chunk(session, job_id, chunk)
        undo.finish_undo(session, job_id)
        if claim is not None:
            scheduling.finish(session, claim)
    return removed


def run_regeneration(
    sessions: sessionmaker[Session], settings: Settings, job_id: str, chunk: int, claim: Claim | None = None
) -> int:
    """Give one chunk's users new passwords, and end the regeneration if it was the last."""
    with sessions() as session:
        found = regeneration.regeneration_work(session, job_id, chunk)
    # Hashing is the slow part: done before the transaction opens, as creation does.
    secrets = creation.make_secrets(settings, found[0]) if found else {}
    done = 0
    with sessions.begin() as session:
        if found is not None:
            done = regeneration.regenerate_chunk(session, found[0], found[1], secrets)
        regeneration.finish_regeneration(session, job_id)
        if claim is not None:
            scheduling.finish(session, claim)
    return done


# A refusal that retrying does not cure: 5xx answers. Anything else (4xx, a connection that broke, no
# server) may pass: the invitation is tried again later.
def _lasting(exc: BaseException) -> bool:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [answer[0] for answer in exc.recipients.values()]
        code = min(codes) if codes else None
    return isinstance(code, int) and 500 <= code < 600


def _reason(exc: BaseException) -> str:
    """The server's answer (its code and text), or what kept us from reaching it; never the letter."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (0, b""))
        return f"The mail server refused the address: {code} {_text(text)}"
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None)
    if code is not None:
        return f"The mail server refused the mail: {code} {_text(text)}"
    return f"The mail server could not be reached ({type(exc).__name__})."


def _text(raw: object) -> str:
    return (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")).strip()[:500]


@dataclass
class Mailing:
    """What one sending unit did."""

    sent: int = 0
    refused: int = 0
    retry_at: datetime | None = None


def run_invitations(
    sessions: sessionmaker[Session], settings: Settings, job_id: str, chunk: int, claim: Claim | None = None
) -> Mailing:
    """Mail one chunk's invitations over one SMTP connection, each marked `sending` (committed) before the
    server is asked and `sent` after it took the mail (shared/imports/inviting.py); then end the unit and
    say when a retry is due."""
    with sessions.begin() as session:
        waiting = inviting.due(session, job_id, chunk)
    done = Mailing()
    client: smtplib.SMTP | None = None
    try:
        for index, invitation_id in enumerate(waiting):
            with sessions.begin() as session:
                letter = inviting.start(session, settings, invitation_id)
            if letter is None:
                continue
            try:
                client = client or mail.connect(settings)
                client.send_message(mail.build_message(settings, letter))
            except SMTP_TROUBLE as exc:
                lasting, reason = _lasting(exc), _reason(exc)
                with sessions.begin() as session:
                    inviting.mark_refused(session, settings, invitation_id, reason, lasting)
                    if not lasting:  # the server is away or busy: the rest wait for the retry too
                        inviting.postpone(session, settings, waiting[index + 1 :], reason)
                done.refused += 1
                log.warning(
                    "invitation mail refused invitation=%d error=%s", invitation_id, type(exc).__name__
                )
                if not lasting:
                    break
                continue
            with sessions.begin() as session:
                inviting.mark_sent(session, invitation_id)
            done.sent += 1
    finally:
        if client is not None:
            with contextlib.suppress(*SMTP_TROUBLE):
                client.quit()
    with sessions.begin() as session:
        if claim is not None:
            scheduling.finish(session, claim)
        done.retry_at = inviting.next_retry(session, job_id, chunk)
        inviting.requeue_due(session)  # a resend meanwhile added to this chunk: its unit goes again
    log.info("invitations mailed job=%s chunk=%d sent=%d refused=%d", job_id, chunk, done.sent, done.refused)
    return done


Offer = Callable[[int], None]  # sends n more slots


@dataclass(frozen=True)
class Hands:
    """What a slot's unit may call on: sending more slots, and the processes there are to share work."""

    offer: Offer
    processes: int


def _validate(sessions: sessionmaker[Session], settings: Settings, claim: Claim, hands: Hands) -> None:
    chunks = run_validation(sessions, settings, claim.job_id, claim, hands.processes)
    # This slot goes on by itself; the other processes get slots of their own for the new chunks.
    hands.offer(min(len(chunks), hands.processes) - 1)


def _create(sessions: sessionmaker[Session], settings: Settings, claim: Claim, _hands: Hands) -> None:
    run_chunk(sessions, settings, claim.job_id, claim.chunk, claim)


def _undo(sessions: sessionmaker[Session], _settings: Settings, claim: Claim, _hands: Hands) -> None:
    run_undo(sessions, claim.job_id, claim.chunk, claim)


def _regenerate(sessions: sessionmaker[Session], settings: Settings, claim: Claim, _hands: Hands) -> None:
    run_regeneration(sessions, settings, claim.job_id, claim.chunk, claim)


def _invite(sessions: sessionmaker[Session], settings: Settings, claim: Claim, _hands: Hands) -> None:
    done = run_invitations(sessions, settings, claim.job_id, claim.chunk, claim)
    if done.retry_at is not None:
        wait = max(0.0, (aware(done.retry_at) - utcnow()).total_seconds())
        # The message names the chunk only; the sweep queues the retry too, should this one be lost.
        invitations_due.apply_async(countdown=wait + 0.1)


@dataclass(frozen=True)
class Work:
    """What runs a kind of unit, and how a unit of it that cannot succeed ends its job's work."""

    run: Callable[[sessionmaker[Session], Settings, Claim, Hands], None]
    halt: Callable[[Session, str, str], object]


# Creation fails the import; an undo or a regeneration stops and says why (the import stays as it ended).
WORK: dict[WorkKind, Work] = {
    WorkKind.VALIDATE: Work(_validate, completion.fail_job),
    WorkKind.CREATE: Work(_create, completion.fail_job),
    WorkKind.UNDO: Work(_undo, undo.halt),
    WorkKind.REGENERATE: Work(_regenerate, regeneration.halt),
    WorkKind.INVITE: Work(_invite, inviting.halt),
}


def fail(sessions: sessionmaker[Session], claim: Claim, reason: str) -> None:
    """End the claim's work with a reason a user can act on."""
    with sessions.begin() as session:
        WORK[claim.kind].halt(session, claim.job_id, reason)
        scheduling.finish(session, claim)


def run_slot(
    sessions: sessionmaker[Session],
    settings: Settings,
    worker: str,
    offer: Offer,
    fleet: Fleet | None = None,
    node: str | None = None,
) -> Claim | None:
    """Claim the next unit of work in fair order and do it; returns what was done (None: nothing).

    `worker` names the slot, `node` the worker it runs in; `fleet` is who works the queue now."""
    fleet = fleet or Fleet()
    stale = timedelta(seconds=settings.claim_timeout_seconds)
    started = time.perf_counter()
    with sessions.begin() as session:
        claim = scheduling.claim_next(session, worker, stale, node, fleet.lapsed)
    CLAIM_SECONDS.observe(time.perf_counter() - started)
    if claim is None:
        return None
    # The unit's request (the one that started the import, undo or regeneration) names these lines.
    with log_context.bound(
        request_id=claim.request_id,
        tenant=claim.tenant_id,
        job=claim.job_id,
        chunk=claim.chunk,
        worker=worker,
    ):
        log.info("claimed kind=%s node=%s", claim.kind, node)
        return _run_claimed(sessions, settings, claim, Hands(offer, planned_processes(settings, fleet)))


def _run_claimed(sessions: sessionmaker[Session], settings: Settings, claim: Claim, hands: Hands) -> Claim:
    try:
        WORK[claim.kind].run(sessions, settings, claim, hands)
    except INFRASTRUCTURE:
        raise  # retried: the unit stays claimed by this slot, which takes it up again
    except DomainError as exc:  # the file or mapping cannot be processed: no retry helps
        fail(sessions, claim, exc.message)
    except Exception as exc:
        fail(sessions, claim, completion.describe_failure(exc))
        raise  # a bug: the job says so, and Flower shows the task red with its traceback
    return claim


def _publish(job_id: str) -> None:
    with runtime.sessions()() as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            publish(runtime.redis(), status_from_db(session, job), job.tenant_id)


def offer_more(count: int) -> None:
    """Offer `count` more slots from inside the worker."""
    offer_slots(app, count)


@app.task(name=SLOT, bind=True)
def slot(self: Task, **_ignored: Any) -> str | None:
    """Do one unit of import work, claimed in fair order; offer a successor while work remains."""
    settings = runtime.settings()
    sessions = runtime.sessions()
    worker = self.request.id or "local"
    try:
        fleet = fleet_now(runtime.redis(), settings)
        claim = run_slot(sessions, settings, worker, offer_more, fleet, runtime.node())
    except INFRASTRUCTURE as exc:
        retries, most = self.request.retries, max_retries(settings)
        if retries >= most:
            # Its unit stays claimed until the heartbeat goes stale; then the sweep offers it again.
            log.error("slot gave up after retries=%d worker=%s error=%s", retries, worker, type(exc).__name__)
            raise
        OUTAGE_RETRIES.labels(outage_service(exc)).inc()
        log.warning("slot retry=%d worker=%s error=%s", retries + 1, worker, type(exc).__name__)
        # max_retries given: None would mean the task's default of three.
        raise self.retry(exc=exc, countdown=backoff(retries), max_retries=most) from exc
    except Retry:
        raise
    if claim is None:
        return None
    _publish(claim.job_id)
    with sessions() as session:
        more = scheduling.waiting(session)
    if more:
        offer_more(1)
    return f"{claim.kind} job={claim.job_id} chunk={claim.chunk}"


@app.task(name=SWEEP)
def sweep() -> int:
    """Offer slots again for work nobody holds (lost messages, dead workers); returns how many."""
    settings = runtime.settings()
    fleet = fleet_now(runtime.redis(), settings)
    with runtime.sessions().begin() as session:
        inviting.requeue_due(session)  # retries whose message was lost
        backlog = scheduling.sweep(session, timedelta(seconds=settings.claim_timeout_seconds), fleet.lapsed)
    if backlog.claimable and (backlog.stale or backlog.idle_seconds >= settings.sweep_seconds):
        log.warning("re-offering work claimable=%d stale=%d", backlog.claimable, backlog.stale)
        processes = planned_processes(settings, fleet)
        offer_more(processes)
        SWEEP_REOFFERS.inc(processes)
        return processes
    return 0


@app.task(name=INVITATIONS_DUE)
def invitations_due() -> int:
    """Queue the sending units whose retries are due, and offer slots for them; returns how many."""
    with runtime.sessions().begin() as session:
        queued = inviting.requeue_due(session)
    if queued:
        offer_more(
            min(queued, planned_processes(runtime.settings(), fleet_now(runtime.redis(), runtime.settings())))
        )
    return queued


@app.task(name="system.ping")
def ping() -> str:
    """A trivial task that proves a worker consumes from the broker."""
    return "pong"


# A purge transaction touches at most BATCH rows (a few milliseconds of locks), and a run at most
# RUN_ROWS: a backlog (a year of imports on a first upgrade) drains over several runs, never in one.
PURGE_BATCH_ROWS = 500
PURGE_RUN_ROWS = 100_000


@dataclass
class PurgeReport:
    """What one purge run removed, by step, and what its transactions cost."""

    removed: dict[str, int]
    transactions: int = 0
    longest_seconds: float = 0.0
    yielded: bool = False  # stopped early for import work: the next run goes on


def run_purge(
    sessions: sessionmaker[Session],
    settings: Settings,
    batch: int = PURGE_BATCH_ROWS,
    budget: int = PURGE_RUN_ROWS,
    now: datetime | None = None,
    redis: Redis | None = None,
) -> PurgeReport:
    """Delete what retention no longer keeps (shared/imports/retention.py) and expired credentials,
    each batch in a transaction of its own; then clear SQLite's write-ahead log of what went.
    `now` is the moment retention counts back from (a test's simulated day); the statuses of the imports
    whose data expired are published to `redis`, so status reads and open pages say so at once."""
    now = now or utcnow()
    report = PurgeReport({"passwords": 0, **dict.fromkeys(retention.STEPS, 0)})

    def one(step: Callable[[Session, int], int], limit: int) -> int:
        started = time.perf_counter()
        with sessions.begin() as session:
            count = step(session, limit)
        report.transactions += 1
        report.longest_seconds = max(report.longest_seconds, time.perf_counter() - started)
        return count

    steps: dict[str, Callable[[Session, int], int]] = {
        "passwords": lambda s, n: purge_expired_passwords(s, settings, limit=n),
        **{name: (lambda s, n, f=f: f(s, settings, now, n)) for name, f in retention.STEPS.items()},
    }
    for name, step in steps.items():
        while budget > 0:
            # Retention can wait, an import cannot: between batches the purge gives way to any import
            # work (expired passwords still go first: they are secrets).
            if name != "passwords" and _imports_busy(sessions):
                report.yielded = True
                budget = 0
                break
            count = one(step, min(batch, budget))
            report.removed[name] += count
            budget -= count
            if count == 0:
                break
    # Credentials past their time: small tables, one statement each; links that ran out go in the audit.
    ran_out: set[str] = set()

    def credentials(session: Session, _limit: int) -> int:
        ran_out.update(invitations.record_expired(session, PURGE_BATCH_ROWS))
        return (
            purge_expired_tokens(session)
            + page_sessions.purge_expired(session)
            + one_time_codes.purge_expired(session)
        )

    one(credentials, 0)
    changed = list(ran_out)
    if redis is not None and report.removed["row_data"] + report.removed["upload_contents"]:
        with sessions() as session:
            changed += [job.id for job in retention.expired_at(session, now)]
    if redis is not None and changed:
        with sessions() as session:
            for job_id in changed:
                if (job := session.get(ImportJob, job_id)) is not None:
                    publish(redis, status_from_db(session, job), job.tenant_id)
    checkpoint_wal(sessions.kw["bind"])  # after every run: it also finishes one a busy reader left undone
    for name, count in report.removed.items():
        PURGED.labels(name).inc(count)
    if any(report.removed.values()):
        log.info(
            "purged %s transactions=%d longest=%.3fs",
            " ".join(f"{name}={count}" for name, count in report.removed.items()),
            report.transactions,
            report.longest_seconds,
        )
    if report.yielded:
        log.info("purge gave way to import work; the next run goes on")
    return report


def _imports_busy(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return scheduling.busy(session)


@app.task(name=PURGE)
def purge_expired_credentials() -> dict[str, int]:
    """Delete, in small batches, what retention no longer keeps (uploaded files, row data, history) and
    expired credentials (temporary passwords, tokens, idle sessions, login codes); returns the counts."""
    return run_purge(runtime.sessions(), runtime.settings(), redis=runtime.redis()).removed
