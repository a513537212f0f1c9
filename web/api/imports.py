"""Uploads and imports (API.md): upload, start, status, events, result files, acknowledge, cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, g, jsonify, request, stream_with_context, url_for
from redis import Redis

from shared.errors import FileRejected, TooManyRequests, Unavailable
from shared.files.uploads import get_upload, store_upload
from shared.imports import progress, stream_leases
from shared.imports.completion import fail_job
from shared.imports.jobs import (
    acknowledge,
    create_job,
    errors_file,
    get_job,
    list_jobs,
    request_cancel,
    status_from_db,
    success_file,
)
from shared.mapping.templates import template_csv, template_xlsx
from shared.mapping.upload_answer import stored_upload_answer, upload_answer
from shared.metrics import RESULT_DOWNLOADS
from shared.models import ImportJob
from web import event_stream
from web.api import bp
from web.clients import celery, redis, settings
from web.contract.routes import route
from web.contract.schemas.imports import ImportList, ImportStatus, StartImport, UploadAnswer, UploadForm
from web.database import clear_destroyed, close_db, db, sessions
from web.multipart import cut_filename
from web.security import admin, import_starts_limit, limiter, tenant_id, tenant_key, uploads_limit
from worker.slots import send_slot

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LOCATION = {"Location": "the new import's status: /api/v1/imports/<id>"}


def _csv(data: bytes, filename: str) -> Response:
    return Response(
        data,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@route(bp, "GET", "/imports/template.csv", media="text/csv")
def template_csv_file() -> Response:
    """A header row with every field and one example row."""
    return _csv(template_csv(), "users-template.csv")


@route(bp, "GET", "/imports/template.xlsx", media=XLSX_TYPE)
def template_xlsx_file() -> Response:
    """The same template as XLSX."""
    return Response(
        template_xlsx(),
        mimetype=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="users-template.xlsx"'},
    )


@route(bp, "POST", "/uploads", form=UploadForm, answer=UploadAnswer, status=201, errors=(415, 429))
@limiter.limit(uploads_limit, key_func=tenant_key)
def upload_file() -> Any:
    """Check and keep a CSV or XLSX file (of a workbook, the sheet named `sheet`); answer with its preview."""
    file = request.files.get("file")
    if file is None and cut_filename("file"):
        raise FileRejected(
            "invalid_filename",
            'The file name of the part named "file" holds a line break (CR or LF), which ends its header '
            "early, so the file arrived without its name. Rename the file without line breaks, or send "
            "the name escaped (%0D, %0A) as browsers do.",
        )
    if file is None and "file" in request.form:  # curl -F file=<users.csv sends the text as a field
        raise FileRejected(
            "missing_filename",
            'The part named "file" came without a file name, so it arrived as a text field, not as a '
            "file. Send it as a file (with curl: -F file=@users.csv, not -F file=<users.csv).",
        )
    if file is None:
        raise FileRejected("empty_file", 'Send the file as a multipart part named "file".')
    data = file.read(settings().max_upload_bytes + 1)
    sheet = request.form.get("sheet") or None
    session = db()
    upload, found = store_upload(
        session, settings(), admin().tenant_id, admin().id, file.filename, data, sheet
    )
    session.commit()
    return jsonify(upload_answer(session, upload, found.preview, found.sheets)), 201


@route(bp, "GET", "/uploads/<hex:upload_id>", answer=UploadAnswer)
def show_upload(upload_id: str) -> Any:
    """The upload's answer again (for the mapping page after a reload)."""
    return jsonify(stored_upload_answer(db(), settings(), get_upload(db(), admin().tenant_id, upload_id)))


@route(
    bp,
    "POST",
    "/imports",
    body=StartImport,
    answer=ImportStatus,
    status=202,
    errors=(404, 410, 422, 429),
    headers=LOCATION,
    description="A mapping that names a column the file lacks, or an ID of another tenant, is refused "
    "with 422 invalid_mapping listing every problem (details: field and message), before any job is made. "
    "Past IMPORT_STARTS_PER_MINUTE starts of the tenant in a minute: 429 too_many_requests with Retry-After. "
    "410 content_expired for an upload whose bytes retention deleted.",
)
@limiter.limit(import_starts_limit, key_func=tenant_key)
def start_import(body: StartImport) -> Any:
    """Check the mapping, make the job and enqueue it; answers at once."""
    session = db()
    job = create_job(session, admin().tenant_id, admin().id, body.upload_id, body.mapping, body.dry_run)
    return started(job)


def started(job: ImportJob) -> Any:
    """Commit a new job, then offer a worker slot, and answer 202 with its status."""
    session = db()
    session.commit()  # commit first, then enqueue: the worker must find the job
    try:
        send_slot(celery())  # a permission to work: the job waits in the database
    except Exception as exc:
        reason = "The job queue did not answer; start the import again."
        fail_job(session, job.id, reason)
        session.commit()
        raise Unavailable("queue_unavailable", reason) from exc
    status = status_from_db(session, job)
    location = url_for("api.show_import", job_id=job.id)
    body_out = {"id": job.id, "status": job.status, "links": {"self": location}} | {
        k: v for k, v in status.items() if k not in ("id", "status", "links")
    }
    return jsonify(body_out), 202, {"Location": location}


@route(bp, "GET", "/imports", answer=ImportList)
def imports_index() -> Any:
    """The tenant's imports, newest first."""
    return jsonify({"items": list_jobs(db(), admin().tenant_id)})


def _status_from_db(job_id: str) -> dict[str, Any]:
    """The job's status from the database (the final truth), cached in Redis for the next reads."""
    job = get_job(db(), tenant_id(), job_id)
    status = status_from_db(db(), job)
    progress.publish(redis(), status, job.tenant_id)
    return status


def _prefetch_status(job_id: str) -> None:
    """A status read's one Redis round trip, before the caller is checked: the access stamp (which
    lets the token check trust this process's cache) and the stored status (served only after it)."""
    g.access_stamp, g.stored_status = progress.read_with_stamp(redis(), job_id)
    g.redis_failed = g.stored_status is None  # then neither the check nor the view asks it again


def _prefetched_body(job_id: str) -> str | None:
    """The status text the prefetch read with the access stamp, if it can be served as is."""
    found = g.pop("stored_status", None)
    return None if found is None else progress.trusted_body(found, tenant_id())


@route(bp, "GET", "/imports/<hex:job_id>", answer=ImportStatus, prefetch=_prefetch_status)
def show_import(job_id: str) -> Any:
    """The job's status and counts: the many reads of a running job are answered from Redis as is."""
    body = _prefetched_body(job_id)
    if body is None:
        return jsonify(_status_from_db(job_id))
    return Response(body, mimetype="application/json")


@route(
    bp,
    "GET",
    "/imports/<hex:job_id>/events",
    answer=ImportStatus,
    media="text/event-stream",
    errors=(404, 429),
    prefetch=_prefetch_status,
    description="One `progress` event per change of the status, ending with the final status. At most "
    "STREAMS_PER_USER streams per user and STREAMS_PER_TENANT per tenant are open at once: past them "
    "429 too_many_streams with Retry-After (polling the status still answers).",
)
def import_events(job_id: str) -> Response:
    """Server-Sent Events: one `progress` event per change, ending with the final status."""
    tenant = tenant_id()
    body = _prefetched_body(job_id)
    first = json.loads(body) if body is not None else _status_from_db(job_id)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if progress.settled(first):  # nothing will follow: one event, and no place taken
        return Response(event_stream.event(first), mimetype="text/event-stream", headers=headers)
    client, factory = redis(), sessions()
    lease = _stream_place(client, tenant)
    close_db()  # the stream may last minutes: it must not hold the request's connection

    def final() -> dict[str, Any]:
        with factory() as session:
            return status_from_db(session, get_job(session, tenant, job_id))

    watch = event_stream.Watch(job_id, tenant, first, final, client, lease)
    loop = request.environ.get("asgi.scope", {}).get(event_stream.HANDOFF)
    if loop is not None:  # the ASGI front follows the rest on its event loop (web/asgi.py)
        loop.append(watch)
        body: Any = (text for text in [event_stream.event(first)])  # no Content-Length: more follows
    else:
        body = stream_with_context(_in_thread(watch))
    return Response(body, mimetype="text/event-stream", headers=headers)


def _in_thread(watch: event_stream.Watch) -> Iterator[str]:
    yield event_stream.event(watch.first)
    yield from event_stream.follow_in_thread(watch)


def _stream_place(client: Redis, tenant: int) -> stream_leases.Lease:
    """The caller's place among the open streams, or 429 too_many_streams."""
    cfg = settings()
    user = str(g.get("admin_id") or admin().id)
    try:
        return stream_leases.acquire(client, tenant, user, cfg.streams_per_user, cfg.streams_per_tenant)
    except stream_leases.StreamsFull as full:
        whose = "you have" if full.whose == "user" else "your workspace has"
        raise TooManyRequests(
            "too_many_streams",
            f"{whose.capitalize()} {full.limit} progress streams open already, the most allowed. Close "
            "some, or read the status with GET /api/v1/imports/<id> instead.",
            retry_after=stream_leases.RETRY_AFTER_SECONDS,
        ) from None


@route(
    bp,
    "GET",
    "/imports/<hex:job_id>/errors.csv",
    media="text/csv",
    errors=(410,),
    description="410 row_data_expired once retention deleted the rows' values or the file.",
)
def download_errors(job_id: str) -> Response:
    """The rows that were not created, with their original columns, Row and Errors."""
    answer = _csv(errors_file(db(), settings(), admin().tenant_id, job_id), f"errors-{job_id}.csv")
    RESULT_DOWNLOADS.labels("errors").inc()
    return answer


@route(
    bp,
    "GET",
    "/imports/<hex:job_id>/success.csv",
    media="text/csv",
    errors=(409, 410),
    description="409 passwords_regenerating while new passwords are being made; 410 once they are destroyed.",
)
def download_success(job_id: str) -> Response:
    """The created users with their temporary passwords (recorded in the audit trail)."""
    session = db()
    data = success_file(session, settings(), admin().tenant_id, admin().id, job_id)
    session.commit()
    RESULT_DOWNLOADS.labels("success").inc()
    return _csv(data, f"success-{job_id}.csv")


def commit_and_publish(job: ImportJob) -> dict[str, Any]:
    """Commit the request's change to a job and tell its listeners."""
    db().commit()
    return publish_status(job)


def publish_status(job: ImportJob) -> dict[str, Any]:
    """Tell the job's listeners its status as the database has it."""
    status = status_from_db(db(), job)
    progress.publish(redis(), status, job.tenant_id)
    return status


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/acknowledge",
    answer=ImportStatus,
    errors=(409,),
    description="409 passwords_regenerating while new passwords are being made.",
)
def acknowledge_import(job_id: str) -> Any:
    """Destroy the temporary passwords (Continue)."""
    session = db()
    job = acknowledge(session, admin().tenant_id, admin().id, job_id)
    status = commit_and_publish(job)
    clear_destroyed()
    return jsonify(status)


@route(bp, "POST", "/imports/<hex:job_id>/cancel", answer=ImportStatus, status=202, errors=(409,))
def cancel_import(job_id: str) -> Any:
    """Stop before the next chunk; rows already created stay."""
    session = db()
    job = request_cancel(session, admin().tenant_id, admin().id, job_id)
    return jsonify(commit_and_publish(job)), 202
