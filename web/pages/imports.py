"""The import flow's pages: upload, mapping, progress and result. Their JS calls the JSON API."""

from __future__ import annotations

from typing import Any

from flask import render_template

from shared.dialer.reference import KINDS
from shared.files.uploads import get_upload
from shared.imports import inviting
from shared.imports.jobs import get_job
from shared.imports.retention import row_data_expired
from shared.mapping.fields import FIELDS
from web.clients import settings
from web.database import db
from web.pages import bp
from web.security import admin, page_auth


@bp.get("/imports/new")
@page_auth
def upload_page() -> Any:
    """Create from file: drop or browse for a file, then Upload."""
    cfg = settings()
    max_size = f"{cfg.max_upload_bytes / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return render_template("upload.html", max_rows=cfg.max_rows, max_size=max_size)


@bp.get("/imports/new/<upload_id>")
@page_auth
def mapping_page(upload_id: str) -> Any:
    """Map the file's columns to the user fields, then Validate only or Import Users."""
    return render_template(
        "mapping.html",
        upload=get_upload(db(), admin().tenant_id, upload_id),
        fields=FIELDS,
        entity_kinds={model: kind for kind, model in KINDS.items()},
        invitation_hours=settings().invitation_hours,
    )


@bp.get("/imports/<import_id>")
@page_auth
def import_page(import_id: str) -> Any:
    """Progress and Upload Result of one import; reloading it just reads the job again."""
    job = get_job(db(), admin().tenant_id, import_id)
    cfg = settings()
    invites = inviting.invites(job) and not job.dry_run
    return render_template(
        "import.html",
        job=job,
        invites=invites,
        invitation_failures=inviting.failures(db(), job.id) if invites else [],
        upload=job.upload,
        undo_window_hours=cfg.undo_window_hours,
        row_data_expired=row_data_expired(job),
        retention_days=min(cfg.row_data_retention_days, cfg.upload_retention_days),
    )
