"""API.md "Upload", "Mapping" and "Imports": uploads, starting an import, its status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from shared.models import JobStatus
from web.contract.bases import Answer, Count, HexId, Request
from web.contract.mapping_model import CheckedMapping, SuggestedMapping


class UploadForm(BaseModel):
    """multipart/form-data with the file in the part named `file`."""

    file: bytes = Field(description="the CSV or XLSX file")
    sheet: str = Field(default="", description="the workbook's sheet to read; empty: the first visible")


class SuggestionProblem(Answer):
    field: str = Field(description="the mapping field left out")
    message: str


class UploadAnswer(Answer):
    upload_id: HexId
    filename: str
    format: Literal["csv", "xlsx"]
    headers: list[str]
    row_count: Count
    preview: list[dict[str, str]] = Field(description="the first rows, by header")
    suggested_mapping: SuggestedMapping  # type: ignore[valid-type]
    suggested_from: str | None = Field(
        default=None, description="the saved mapping the suggestion comes from; absent: from the headers"
    )
    suggestion_problems: list[SuggestionProblem] | None = Field(
        default=None, description="what the saved mapping chose that is gone since (left out)"
    )
    sheet: str | None = Field(description="the workbook sheet read; null for CSV")
    sheets: list[str] = Field(description="the workbook's sheets in order; [] for CSV")
    created_at: datetime
    content_expired: bool = Field(
        description="the file's bytes were deleted (UPLOAD_RETENTION_DAYS after its imports ended): no"
        " preview, no new import of it"
    )


class StartImport(Request):
    upload_id: HexId
    mapping: CheckedMapping
    dry_run: bool = Field(default=False, description="check every row, create nothing")


class ImportLinks(Answer):
    self: str
    errors: str | None = Field(default=None, description="once there is a duplicate or an error")
    success: str | None = Field(default=None, description="once users were created, until the passwords go")
    rows: str | None = Field(default=None, description="its rows, values and messages, once it ended")


class InvitationCounts(Answer):
    """The invitations of an import by invitation, each user's newest counted once."""

    pending: Count = Field(description="waiting for their mail (a retry included)")
    sent: Count = Field(description="mailed, not accepted yet, not expired")
    failed: Count = Field(description="the mail server refused, or retries ran out")
    accepted: Count
    expired: Count = Field(description="sent, not accepted within INVITATION_HOURS")


class ImportStatus(Answer):
    id: HexId
    status: JobStatus
    dry_run: bool
    total: Count
    processed: Count = Field(description="created + duplicates + errors")
    created: Count = Field(description="of a dry run: the rows that would be created")
    duplicates: Count
    errors: Count
    percent: Annotated[int, Field(ge=0, le=100)]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="why a failed job could not process its file")
    filename: str
    upload_id: HexId
    created_by: str | None
    cancel_requested: bool
    passwords_destroyed: bool
    row_data_expired: bool = Field(
        description="the rows' values and messages or the file were deleted (ROW_DATA_RETENTION_DAYS, "
        "UPLOAD_RETENTION_DAYS after it ended): errors.csv, rows and retry answer 410 row_data_expired"
    )
    undone: Count = Field(description="users an undo removed")
    undone_at: datetime | None = Field(description="when the undo removed the last user")
    retry_of: HexId | None = Field(description="the import whose failed rows this one retries")
    retried_by: list[HexId] = Field(description="the retries of this import's failed rows, oldest first")
    regenerating: bool = Field(description="new temporary passwords are being made")
    regenerated: Count = Field(description="users holding the newest regenerated passwords")
    password_generation: Count = Field(description="how many times the passwords were regenerated")
    passwords_regenerated_at: datetime | None
    invitations: InvitationCounts | None = Field(
        default=None, description="only for an import with `credentials: invitation`"
    )
    links: ImportLinks


class ImportList(Answer):
    items: list[ImportStatus] = Field(description="newest first")
