"""The answer to an upload: what the file holds (shared.files.uploads) and the mapping suggested for it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.files.uploads import read_preview, upload_as_dict
from shared.mapping.saved_mappings import suggestion
from shared.models import Upload
from shared.settings import Settings


def upload_answer(
    session: Session, upload: Upload, preview: list[dict[str, str]], sheets: list[str]
) -> dict[str, Any]:
    """The upload's answer, its suggestion from a saved mapping where one fits, else from the headers."""
    return upload_as_dict(
        upload, preview, sheets, suggestion(session, upload.tenant_id, list(upload.headers), preview)
    )


def stored_upload_answer(session: Session, settings: Settings, upload: Upload) -> dict[str, Any]:
    """The upload's answer again, its preview read from the stored file."""
    preview, sheets = read_preview(settings, upload)
    return upload_answer(session, upload, preview, sheets)
