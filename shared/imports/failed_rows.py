"""Failed rows of an import: listed with their original values, corrections checked, then retried.

The result page lists the error and duplicate rows with each message beside its cell; the admin
corrects cells in place, each correction checked here against the same rules as an import (the
job's mapping, the tenant's references, the users that exist). A retry makes a new upload of the
error and duplicate rows with the corrections applied, and a new import of it with the same
mapping that points back with `retry_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.audit import record
from shared.dialer.users import MAX_PER_PAGE
from shared.errors import Conflict, DomainError, NotFound, Unprocessable
from shared.files.reader import Row
from shared.files.result_files import csv_bytes
from shared.files.uploads import open_upload, store_upload
from shared.imports.allocation import existing_values
from shared.imports.jobs import create_job, get_job
from shared.imports.retention import refuse_expired
from shared.mapping.fields import UNIQUE
from shared.mapping.parser import Mapping, load_mapping
from shared.mapping.validation import SIP_DEVICE_KEY, SIP_URI_KEY, References, RowProblem, row_problems
from shared.models import FINAL_STATES, ImportJob, ImportRow, RowStatus, Tenant
from shared.settings import Settings

RETRIED = (RowStatus.ERROR, RowStatus.DUPLICATE)
RETRY_SUFFIX = " (failed rows)"


@dataclass(frozen=True)
class RowsPage:
    """A page of an import's rows: each with its original values and its problems."""

    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    columns: list[str]  # the file's columns the mapping reads, in file order: what a fix may change


def column_of(mapping: Mapping, field: str | None) -> str | None:
    """The file column a problem's field is read from (None: one value for all rows, or the row)."""
    if field == SIP_DEVICE_KEY:
        return mapping.device_column
    if field == SIP_URI_KEY:
        return mapping.uri_column
    source = mapping.source(field) if field else None
    return source.column if source else None


def _problem(mapping: Mapping, field: str | None, message: str) -> dict[str, Any]:
    return {"field": field, "column": column_of(mapping, field), "message": message}


def _mapping(job: ImportJob) -> Mapping:
    return load_mapping(job.mapping, list(job.upload.headers))


def _columns(job: ImportJob, mapping: Mapping) -> list[str]:
    used = set(mapping.columns)
    return [h for h in job.upload.headers if h in used]


def _values(settings: Settings, job: ImportJob, numbers: set[int]) -> dict[int, dict[str, str]]:
    """The original cells of these rows of the import's file."""
    if not numbers:
        return {}
    return {
        row.number: row.values for row in open_upload(settings, job.upload).rows() if row.number in numbers
    }


def list_rows(
    session: Session,
    settings: Settings,
    tenant_id: int,
    job_id: str,
    statuses: list[RowStatus] | None,
    page: int = 1,
    per_page: int = 50,
) -> RowsPage:
    """A page of the import's rows in row order, optionally only those in some states."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise DomainError("invalid_page", f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}.")
    job = get_job(session, tenant_id, job_id)
    refuse_expired(job)
    where = [ImportRow.job_id == job.id] + ([ImportRow.status.in_(statuses)] if statuses else [])
    total = session.scalar(select(func.count()).select_from(ImportRow).where(*where)) or 0
    rows = session.scalars(
        select(ImportRow)
        .where(*where)
        .order_by(ImportRow.row_number)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    mapping = _mapping(job)
    values = _values(settings, job, {r.row_number for r in rows})
    items = []
    for r in rows:
        messages = list(r.messages or [])
        fields = list(r.problem_fields or [None] * len(messages))
        items.append(
            {
                "row": r.row_number,
                "status": r.status,
                "values": values.get(r.row_number, {}),
                "messages": messages,
                "problems": [_problem(mapping, f, m) for f, m in zip(fields, messages, strict=False)],
            }
        )
    return RowsPage(items, total, page, per_page, _columns(job, mapping))


def _corrections(raw: Any, headers: list[str], where: str) -> tuple[dict[str, str], list[str]]:
    """Corrected cells by column, and what is wrong with them (`where` names the row in messages)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [f'{where}: "values" must be an object of column: text.']
    known = set(headers)
    good: dict[str, str] = {}
    problems = []
    for column, value in raw.items():
        if column not in known:
            problems.append(f'{where}: the file has no column "{column}".')
        elif isinstance(value, bool) or not isinstance(value, str | int | float | None):
            problems.append(f'{where}: the value of "{column}" must be text.')
        else:
            good[column] = "" if value is None else str(value)
    return good, problems


def _import_row(session: Session, job: ImportJob, number: int) -> ImportRow:
    found = (
        None
        if number >= 2**31
        else session.scalar(
            select(ImportRow).where(ImportRow.job_id == job.id, ImportRow.row_number == number)
        )
    )
    if found is None:
        raise NotFound(f"Row {number} of import {job.id}")
    return found


def check_row(
    session: Session, settings: Settings, tenant_id: int, job_id: str, number: int, raw_values: Any
) -> dict[str, Any]:
    """Check a row with corrected cells against the import's rules: every problem, per field."""
    job = get_job(session, tenant_id, job_id)
    refuse_expired(job)
    _import_row(session, job, number)
    corrected, problems = _corrections(raw_values, list(job.upload.headers), f"Row {number}")
    if problems:
        raise Unprocessable("invalid_values", problems[0], [{"row": number, "message": p} for p in problems])
    mapping = _mapping(job)
    values = _values(settings, job, {number}).get(number, {}) | corrected
    refs = References.load(session, session.get(Tenant, job.tenant_id))
    draft, found = row_problems(Row(number, values), mapping, refs)
    found += _taken(session, job.tenant_id, draft)
    return {
        "row": number,
        "valid": not found,
        "problems": [_problem(mapping, p.field, p.message) for p in found],
    }


def _taken(session: Session, tenant_id: int, draft: dict[str, Any]) -> list[RowProblem]:
    """Unique values of the draft that users of the tenant already hold (they would be duplicates)."""
    problems = []
    for f in UNIQUE:
        value = draft.get(f.attribute)
        if value and existing_values(session, tenant_id, f, {value.lower()}):
            problems.append(RowProblem(f.key, f"{f.label} {f.shown(value)} {f.taken}"))
    return problems


def _retry_refusal(job: ImportJob) -> str | None:
    if job.dry_run:
        return "A validation created nothing; fix the file or the mapping and import it."
    if job.status not in FINAL_STATES:
        return f"Only an import that has ended can be retried; this one is {job.status}."
    return None


def retry(
    session: Session, settings: Settings, tenant_id: int, actor_id: int | None, job_id: str, raw_rows: Any
) -> ImportJob:
    """A new import of this import's error and duplicate rows, corrections applied, same mapping."""
    job = get_job(session, tenant_id, job_id)
    refuse_expired(job)
    reason = _retry_refusal(job)
    if reason:
        raise Conflict("retry_not_allowed", reason)
    failed = [
        r.row_number
        for r in session.scalars(
            select(ImportRow)
            .where(ImportRow.job_id == job.id, ImportRow.status.in_(RETRIED))
            .order_by(ImportRow.row_number)
        )
    ]
    if not failed:
        raise Conflict("retry_not_allowed", "This import has no error or duplicate rows to retry.")
    headers = list(job.upload.headers)
    fixes, problems = _parse_rows(raw_rows, headers, set(failed))
    if problems:
        summary = f"The corrections have {len(problems)} problem(s): {problems[0]['message']}"
        raise Unprocessable("invalid_retry", summary, problems)
    originals = _values(settings, job, set(failed))
    merged = [originals[n] | fixes.get(n, {}) for n in failed if n in originals]
    lines = [[values.get(h, "") for h in headers] for values in merged]
    upload, _ = store_upload(
        session, settings, tenant_id, actor_id, _retry_name(job.upload.filename), csv_bytes([headers, *lines])
    )
    new = create_job(session, tenant_id, actor_id, upload.id, job.mapping, False, retry_of=job.id)
    record(
        session,
        tenant_id,
        actor_id,
        "import.retried",
        job.id,
        {"retry": new.id, "rows": len(lines), "corrected": len(fixes)},
    )
    return new


def _parse_rows(
    raw: Any, headers: list[str], failed: set[int]
) -> tuple[dict[int, dict[str, str]], list[dict[str, Any]]]:
    """The corrections by row number, and every problem of the request's `rows`."""
    if raw is None:
        return {}, []
    if not isinstance(raw, list):
        return {}, [{"row": None, "message": '"rows" must be a list of {"row": <number>, "values": {...}}.'}]
    fixes: dict[int, dict[str, str]] = {}
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        number = item.get("row") if isinstance(item, dict) else None
        if isinstance(number, bool) or not isinstance(number, int):
            problems.append(
                {"row": None, "message": f'Item {index + 1} of "rows" needs a row number ("row").'}
            )
            continue
        if number not in failed:
            problems.append(
                {"row": number, "message": f"Row {number} is not an error or duplicate row of this import."}
            )
            continue
        corrected, bad = _corrections(item.get("values"), headers, f"Row {number}")
        problems.extend({"row": number, "message": message} for message in bad)
        fixes.setdefault(number, {}).update(corrected)
    return fixes, problems


def _retry_name(filename: str) -> str:
    stem = PurePath(filename).stem.removesuffix(RETRY_SUFFIX)
    return f"{stem}{RETRY_SUFFIX}.csv"
