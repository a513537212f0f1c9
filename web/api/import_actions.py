"""After an import (API.md "Beyond the help page"): undo, regenerate passwords, failed rows, retry."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared import failed_rows
from shared.jobs import get_job
from shared.models import ImportJob
from shared.regeneration import request_regeneration
from shared.undo import request_undo
from web.api import bp
from web.api.auth import json_body
from web.api.imports import commit_and_publish, publish_status, started
from web.api.users import int_arg
from web.database import db
from web.security import admin, api_auth, tenant_id
from web.services import offer_slots, settings


def _queued(job: ImportJob, units: int) -> Any:
    """Commit the request's work, tell the job's listeners, offer slots; answer 202 with the status."""
    status = commit_and_publish(job)
    offer_slots(min(units, settings().worker_processes))
    return jsonify(status), 202


@bp.post("/imports/<job_id>/undo")
@api_auth
def undo_import(job_id: str) -> Any:
    """Remove the users this import created that still exist (within UNDO_WINDOW_HOURS of its end)."""
    job, units = request_undo(db(), settings(), admin().tenant_id, admin().id, job_id)
    return _queued(job, units)


@bp.post("/imports/<job_id>/regenerate-passwords")
@api_auth
def regenerate_passwords(job_id: str) -> Any:
    """New temporary passwords for every user of the import that still exists."""
    job, units = request_regeneration(db(), admin().tenant_id, admin().id, job_id)
    return _queued(job, units)


@bp.get("/imports/<job_id>/rows")
@api_auth
def import_rows(job_id: str) -> Any:
    """A page of the import's rows with their original values and messages (status filters them)."""
    found = failed_rows.list_rows(
        db(),
        settings(),
        tenant_id(),
        job_id,
        failed_rows.parse_statuses(request.args.get("status")),
        page=int_arg("page", 1),
        per_page=int_arg("per_page", 50),
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


@bp.post("/imports/<job_id>/rows/<int:row>/check")
@api_auth
def check_import_row(job_id: str, row: int) -> Any:
    """Check a row with corrected cells against the import's rules; every problem, per field."""
    body = json_body()
    return jsonify(failed_rows.check_row(db(), settings(), tenant_id(), job_id, row, body.get("values")))


@bp.post("/imports/<job_id>/retry")
@api_auth
def retry_import(job_id: str) -> Any:
    """A new import of the error and duplicate rows, with the corrections applied; same mapping."""
    body = json_body() if request.get_data() else {}  # no body: every failed row, unchanged
    job = failed_rows.retry(db(), settings(), admin().tenant_id, admin().id, job_id, body.get("rows"))
    answer = started(job)
    publish_status(get_job(db(), tenant_id(), job_id))  # its status now names the retry
    return answer
