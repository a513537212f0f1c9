"""The files we hand back: error details (re-uploadable as is) and success details."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

# Columns the error file adds; originals of the same name are dropped so a re-upload round-trips.
ROW, ERRORS = "Row", "Errors"
SUCCESS_HEADERS = ["Row", "Username", "Email", "Virtual Extension", "Temporary Password"]
SIP_HEADER = "SIP Device/URI"
# A spreadsheet runs a cell starting with these as a formula (CSV injection); TAB and CR hide it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SuccessRow:
    """One created user as the success details file lists it."""

    row: int
    username: str
    email: str
    extension: str
    password: str
    sip: str = ""


def neutralise(value: str) -> str:
    """Prefix an apostrophe to a cell a spreadsheet would run as a formula; shared/reader.py removes it."""
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


def success_csv(rows: Iterable[SuccessRow]) -> bytes:
    """The users created, with their temporary passwords; a SIP column only when any row has one."""
    rows = list(rows)
    with_sip = any(r.sip for r in rows)
    header = SUCCESS_HEADERS + [SIP_HEADER] * with_sip
    lines = ([str(r.row), r.username, r.email, r.extension, r.password] + [r.sip] * with_sip for r in rows)
    return csv_bytes([header, *lines])
