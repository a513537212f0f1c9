"""After an import (API.md "Beyond the help page"): undo, regenerate passwords, failed rows, retry."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.imports import failed_rows, inviting
from shared.imports.jobs import get_job
from shared.imports.regeneration import request_regeneration
from shared.imports.undo import request_undo
from shared.models import ImportJob
from web.api import bp
from web.api.imports import LOCATION, commit_and_publish, publish_status, started
from web.clients import celery, redis, settings
from web.contract.routes import route
from web.contract.schemas.after_import import Retry, RowCheck, RowCheckAnswer, RowPage, RowsQuery
from web.contract.schemas.imports import ImportStatus
from web.database import clear_destroyed, db
from web.security import admin, tenant_id
from worker.slots import fleet_now, offer_slots


def _queued(job: ImportJob, units: int) -> Any:
    """Commit the request's work, tell the job's listeners, offer slots; answer 202 with the status."""
    status = commit_and_publish(job)
    clear_destroyed()  # an undo or a regeneration destroyed the temporary passwords kept so far
    processes = fleet_now(redis(), settings()).processes(settings().worker_processes)
    offer_slots(celery(), min(units, processes))
    return jsonify(status), 202


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/undo",
    answer=ImportStatus,
    status=202,
    errors=(409,),
    description="The status becomes undoing, then undone with `undone` (a count). 409 undo_not_allowed "
    "while the import runs, after UNDO_WINDOW_HOURS, during a regeneration, or when undone already.",
)
def undo_import(job_id: str) -> Any:
    """Remove the users this import created that still exist (within UNDO_WINDOW_HOURS of its end)."""
    job, units = request_undo(db(), settings(), admin().tenant_id, admin().id, job_id)
    return _queued(job, units)


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/regenerate-passwords",
    answer=ImportStatus,
    status=202,
    errors=(409,),
    description="Each user must change it at the next login; their sessions and tokens end; success.csv "
    "serves the new ones once `regenerating` is false. 409 regenerate_not_allowed while the import or an "
    "undo runs, after an undo, during another regeneration, when none of its users exists, once its row "
    "data expired, or for an import by invitation.",
)
def regenerate_passwords(job_id: str) -> Any:
    """New temporary passwords for every user of the import that still exists."""
    job, units = request_regeneration(db(), admin().tenant_id, admin().id, job_id)
    return _queued(job, units)


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/resend-invitations",
    answer=ImportStatus,
    status=202,
    errors=(409,),
    description="New links for the users of the import who have not accepted yet; their old links stop "
    "working. 409 no_invitations for an import that used temporary passwords, while it runs, or once undone.",
)
def resend_invitations(job_id: str) -> Any:
    """Email the import's users who have not accepted their invitation a new one."""
    job = get_job(db(), admin().tenant_id, job_id)
    _users, units = inviting.resend(db(), job, admin().id)
    return _queued(job, units)


@route(
    bp,
    "GET",
    "/imports/<hex:job_id>/rows",
    query=RowsQuery,
    answer=RowPage,
    errors=(410,),
    description="410 row_data_expired once retention deleted the rows' values or the file.",
)
def import_rows(job_id: str, query: RowsQuery) -> Any:
    """A page of the import's rows with their original values and messages (status filters them)."""
    found = failed_rows.list_rows(
        db(), settings(), tenant_id(), job_id, query.status, page=query.page, per_page=query.per_page
    )
    return jsonify(
        {
            "items": found.items,
            "total": found.total,
            "page": found.page,
            "per_page": found.per_page,
            "columns": found.columns,
        }
    )


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/rows/<id:row>/check",
    body=RowCheck,
    answer=RowCheckAnswer,
    errors=(410, 422),
    description="404 for a row the import does not have; 422 invalid_values for a column the file lacks; "
    "410 row_data_expired once retention deleted the rows' values or the file.",
)
def check_import_row(job_id: str, row: int, body: RowCheck) -> Any:
    """Check a row with corrected cells against the import's rules; every problem, per field."""
    return jsonify(failed_rows.check_row(db(), settings(), tenant_id(), job_id, row, body.values))


@route(
    bp,
    "POST",
    "/imports/<hex:job_id>/retry",
    body=Retry,
    body_required=False,
    answer=ImportStatus,
    status=202,
    errors=(409, 410, 422),
    headers=LOCATION,
    description="The new import has the same mapping and `retry_of` = this id. 409 retry_not_allowed for a "
    "dry run, an import still running, or one without error or duplicate rows; 422 invalid_retry lists "
    "every correction that names another row or a column the file lacks; 410 row_data_expired once "
    "retention deleted the rows' values or the file.",
)
def retry_import(job_id: str, body: Retry) -> Any:
    """A new import of the error and duplicate rows, with the corrections applied; same mapping."""
    fixes = None if body.rows is None else [fix.model_dump() for fix in body.rows]
    job = failed_rows.retry(db(), settings(), admin().tenant_id, admin().id, job_id, fixes)
    answer = started(job)
    publish_status(get_job(db(), tenant_id(), job_id))  # its status now names the retry
    return answer
