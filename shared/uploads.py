"""Uploaded files: checked by the reader, then kept in the database for any worker to read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.audit import record
from shared.errors import NotFound
from shared.models import Upload
from shared.reader import Table, inspect_table, open_table
from shared.settings import Settings
from shared.suggest import suggest_mapping
from shared.timestamps import iso

FILENAME_MAX = 255


def store_upload(
    session: Session, settings: Settings, tenant_id: int, actor_id: int | None, filename: str, data: bytes
) -> tuple[Upload, list[dict[str, str]]]:
    """Check the file (type, size, header, rows) and keep it; returns the upload and its preview."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1][:FILENAME_MAX] or "upload"
    found = inspect_table(data, name, max_rows=settings.max_rows, max_bytes=settings.max_upload_bytes)
    upload = Upload(
        tenant_id=tenant_id,
        created_by_id=actor_id,
        filename=name,
        format=found.format,
        size=len(data),
        content=data,
        headers=found.headers,
        row_count=found.row_count,
    )
    session.add(upload)
    session.flush()
    record(
        session,
        tenant_id,
        actor_id,
        "upload.created",
        upload.id,
        {"rows": found.row_count, "bytes": len(data)},
    )
    return upload, found.preview


def get_upload(session: Session, tenant_id: int, upload_id: str) -> Upload:
    """One upload of the tenant; another tenant's answers NotFound."""
    upload = session.get(Upload, upload_id)
    if upload is None or upload.tenant_id != tenant_id:
        raise NotFound(f"Upload {upload_id}")
    return upload


def open_upload(settings: Settings, upload: Upload) -> Table:
    """The stored file as a table (same limits as when it was uploaded)."""
    return open_table(
        upload.content, upload.filename, max_rows=settings.max_rows, max_bytes=settings.max_upload_bytes
    )


def preview_rows(settings: Settings, upload: Upload, count: int = 5) -> list[dict[str, str]]:
    """The first rows of a stored upload."""
    rows = []
    for row in open_upload(settings, upload).rows():
        rows.append(row.values)
        if len(rows) == count:
            break
    return rows


def upload_as_dict(upload: Upload, preview: list[dict[str, str]]) -> dict[str, Any]:
    """The JSON answer of an upload (API.md)."""
    return {
        "upload_id": upload.id,
        "filename": upload.filename,
        "format": upload.format,
        "headers": list(upload.headers),
        "row_count": upload.row_count,
        "preview": preview,
        "suggested_mapping": suggest_mapping(list(upload.headers), preview),
        "created_at": iso(upload.created_at),
    }
