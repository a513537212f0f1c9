"""Read an uploaded CSV or XLSX file into a header and rows of text, refusing bad files clearly.

The public entry point; the work is split by concept: table (header, rows), csv_reader,
xlsx_reader, and archive (the checks on a workbook's ZIP archive that run before any XML is parsed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from shared.errors import FileRejected
from shared.files.csv_reader import open_csv
from shared.files.table import EMPTY, SAVE_AS, Row, Table
from shared.files.xlsx_reader import open_xlsx
from shared.text import size_text

__all__ = ["Inspection", "Row", "Table", "inspect_table", "open_table"]

DEFAULT_MAX_COLUMNS = 200  # Settings.max_columns (MAX_COLUMNS)
_MAGIC = {
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls) or a password-protected file",
    b"%PDF": "a PDF",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"{\\rtf": "a Rich Text document (.rtf)",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"SQLite format 3\x00": "an SQLite database",
    b"\x7fELF": "a program",
    b"MZ\x90\x00": "a Windows program",
}
_SPREADSHEET_2003 = re.compile(rb"\s*<\?xml[^>]*>\s*(<\?mso-application progid=.Excel\.Sheet.\?>|<Workbook)")


@dataclass(frozen=True)
class Inspection:
    """What the upload answer shows: format, headers, how many rows, the first rows, the sheets."""

    format: str
    headers: list[str]
    row_count: int
    preview: list[dict[str, str]]
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)


def open_table(
    data: bytes,
    filename: str,
    *,
    max_rows: int,
    max_bytes: int,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    sheet: str | None = None,
) -> Table:
    """Check an uploaded file (size, format, encoding, header) and return it as a Table."""
    if len(data) > max_bytes:
        raise FileRejected(
            "file_too_large",
            f"The file is {size_text(len(data), max_bytes)}; the limit is {size_text(max_bytes)}. "
            "Split it into smaller files.",
        )
    if not data:
        raise FileRejected("empty_file", EMPTY)
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise FileRejected("unsupported_format", f"This file is {what}, not a user list. {SAVE_AS}")
    if _SPREADSHEET_2003.match(data[:512]):
        raise FileRejected(
            "unsupported_format",
            f"This file is an Excel 2003 XML spreadsheet, not a .xlsx workbook. {SAVE_AS}",
        )
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a ZIP archive, as every .xlsx is
        return open_xlsx(data, max_rows=max_rows, max_columns=max_columns, sheet=sheet)
    suffix = PurePath(filename).suffix.lower()
    return open_csv(data, suffix, max_rows=max_rows, max_columns=max_columns)


def inspect_table(
    data: bytes,
    filename: str,
    *,
    max_rows: int,
    max_bytes: int,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    sheet: str | None = None,
    preview_rows: int = 5,
) -> Inspection:
    """Read the whole file once: count its data rows and keep the first few as a preview."""
    table = open_table(
        data, filename, max_rows=max_rows, max_bytes=max_bytes, max_columns=max_columns, sheet=sheet
    )
    count, preview = 0, []
    for row in table.rows():
        count += 1
        if len(preview) < preview_rows:
            preview.append(dict(row.values))
    if not count:
        raise FileRejected(
            "empty_file",
            "The file has a header row but no user rows under it. Add one row per user.",
            row=table.header_row,
        )
    return Inspection(table.format, list(table.headers), count, preview, table.sheet, table.sheets)
