"""Uploaded files: checked by the reader, then kept in the database for any worker to read."""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy.orm import Session

from shared.audit import record
from shared.errors import NotFound
from shared.files.reader import Inspection, Table, inspect_table, open_table
from shared.models import Upload
from shared.settings import Settings
from shared.timestamps import iso

FILENAME_MAX = 255
# Control and format characters (NUL, line breaks, zero-width, bidi overrides that disguise a name),
# lone surrogates (PostgreSQL refuses them) and line/paragraph separators mean nothing in a name.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def clean_filename(filename: str | None) -> str:
    """The name as kept and shown: no folders, no control or invisible characters, at most 255."""
    name = "".join(c for c in filename or "" if unicodedata.category(c) not in _UNPRINTABLE)
    return name.replace("\\", "/").rsplit("/", 1)[-1].strip()[:FILENAME_MAX] or "upload"


def store_upload(
    session: Session,
    settings: Settings,
    tenant_id: int,
    actor_id: int | None,
    filename: str | None,
    data: bytes,
    sheet: str | None = None,
) -> tuple[Upload, Inspection]:
    """Check the file (type, size, header, rows) and keep it; returns the upload and what was read."""
    name = clean_filename(filename)
    found = inspect_table(
        data,
        name,
        max_rows=settings.max_rows,
        max_bytes=settings.max_upload_bytes,
        max_columns=settings.max_columns,
        sheet=sheet,
    )
    upload = Upload(
        tenant_id=tenant_id,
        created_by_id=actor_id,
        filename=name,
        format=found.format,
        size=len(data),
        content=data,
        headers=found.headers,
        row_count=found.row_count,
        sheet=found.sheet,
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
    return upload, found


def get_upload(session: Session, tenant_id: int, upload_id: str) -> Upload:
    """One upload of the tenant; another tenant's answers NotFound."""
    upload = session.get(Upload, upload_id)
    if upload is None or upload.tenant_id != tenant_id:
        raise NotFound(f"Upload {upload_id}")
    return upload


def open_upload(settings: Settings, upload: Upload) -> Table:
    """The stored file as a table (same limits and sheet as when it was uploaded)."""
    return open_table(
        upload.content,
        upload.filename,
        max_rows=settings.max_rows,
        max_bytes=settings.max_upload_bytes,
        max_columns=settings.max_columns,
        sheet=upload.sheet,
    )


def read_preview(
    settings: Settings, upload: Upload, count: int = 5
) -> tuple[list[dict[str, str]], list[str]]:
    """The stored file's first `count` rows, and its workbook's sheets (none once its bytes expired)."""
    if upload.content_expired_at is not None:
        return [], []
    table = open_upload(settings, upload)
    preview = []
    for row in table.rows():
        preview.append(row.values)
        if len(preview) == count:
            break
    return preview, table.sheets


def upload_as_dict(
    upload: Upload, preview: list[dict[str, str]], sheets: list[str], suggested: dict[str, Any]
) -> dict[str, Any]:
    """The JSON answer of an upload (API.md, plus the workbook's sheet and sheets), with the mapping
    suggested for it (shared.mapping.upload_answer)."""
    return {
        "upload_id": upload.id,
        "filename": upload.filename,
        "format": upload.format,
        "headers": list(upload.headers),
        "row_count": upload.row_count,
        "preview": preview,
        **suggested,
        "sheet": upload.sheet,
        "sheets": sheets,
        "created_at": iso(upload.created_at),
        "content_expired": upload.content_expired_at is not None,
    }
