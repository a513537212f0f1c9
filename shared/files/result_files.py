"""The files we hand back: error details (re-uploadable as is) and success details."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

# Columns the error file adds; originals of the same name are dropped so a re-upload round-trips.
ROW, ERRORS = "Row", "Errors"
PASSWORD = "Temporary Password"
INVITATION_HEADER = "Invitation"  # an import by invitation's column instead: the invitation's state
SIP_HEADER = "SIP Device/URI"
# A spreadsheet runs a cell starting with these as a formula (CSV injection); TAB and CR hide it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SuccessRow:
    """One created user as the success details file lists it: its row, values by column, and its
    temporary password (or, by invitation, the invitation's state)."""

    row: int
    values: dict[str, str]
    password: str


def neutralise(value: str) -> str:
    """Prefix an apostrophe to a cell a spreadsheet would run as a formula (shared/files/reader.py
    removes it)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_bytes(rows: Iterable[Iterable[str]]) -> bytes:
    """Write rows as CSV that Excel opens correctly: UTF-8 with BOM, CRLF, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def errors_csv(headers: list[str], rows: Iterable[tuple[int, dict[str, str], list[str]]]) -> bytes:
    """The rows not created: their original columns, then Row and Errors (messages joined by '; ')."""
    originals = [h for h in headers if h.casefold() not in {ROW.casefold(), ERRORS.casefold()}]
    lines = (
        [*(values.get(h, "") for h in originals), str(number), "; ".join(messages)]
        for number, values, messages in rows
    )
    return csv_bytes([[*originals, ROW, ERRORS], *lines])


def success_csv(
    first: list[str], optional: list[str], rows: Iterable[SuccessRow], secret_column: str = PASSWORD
) -> bytes:
    """Row, the `first` columns, Temporary Password (or Invitation), then each `optional` column that
    any row fills."""
    rows = list(rows)
    extra = [c for c in optional if any(r.values.get(c) for r in rows)]
    lines = (
        [str(r.row), *(r.values.get(c, "") for c in first), r.password, *(r.values.get(c, "") for c in extra)]
        for r in rows
    )
    return csv_bytes([["Row", *first, secret_column, *extra], *lines])
