"""A file read as a table: the header row found and checked, then the data rows under it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from shared.errors import FileRejected
from shared.text import shown

SAVE_AS = "Save the user list as CSV (UTF-8) or as an Excel workbook (.xlsx) and upload it again."
EMPTY = "The file is empty. Upload a file with a header row and one row per user."
MAX_CELL = 131072  # characters in one cell (128 K); Excel itself stops at 32,767
_NEUTRALISED = re.compile(r"'(?=[=+\-@\t\r])")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([T ][\d:.]+)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")

Records = Iterator[tuple[int, list[str]]]


@dataclass(frozen=True)
class Row:
    """One data row: its sheet row number, its cells by header, and cells beyond the header."""

    number: int
    values: dict[str, str]
    extra: tuple[str, ...] = ()


class Table:
    """A checked header plus a restartable stream of data rows from one uploaded file."""

    def __init__(
        self,
        format: str,
        records: Callable[[], Records],
        *,
        max_rows: int,
        empty_message: str,
        encoding: str | None = None,
        delimiter: str | None = None,
        sheet: str | None = None,
        sheets: Sequence[str] = (),
    ) -> None:
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self.sheet = sheet
        self.sheets = list(sheets)
        self._records = records
        self._max_rows = max_rows
        self.header_row, self.headers = _find_header(records(), empty_message, self.sheets)

    def rows(self) -> Iterator[Row]:
        """Yield the data rows under the header, skipping blank ones; refuse more than max_rows."""
        width, seen = len(self.headers), 0
        for number, cells in self._records():
            if number <= self.header_row or not any(cells):
                continue
            seen += 1
            if seen > self._max_rows:
                raise too_many_rows(self._max_rows, f"row {number} is user row {seen}", number)
            padded = cells[:width] + [""] * (width - len(cells))
            yield Row(
                number, dict(zip(self.headers, padded, strict=True)), tuple(c for c in cells[width:] if c)
            )


def too_many_rows(max_rows: int, where: str, row: int) -> FileRejected:
    """The refusal of a file with more user rows than allowed."""
    return FileRejected(
        "too_many_rows",
        f"The file has more than {max_rows} user rows ({where}). "
        f"Split it into files of at most {max_rows} rows each.",
        row=row,
    )


def too_many_columns(where: str, count: int, max_columns: int, row: int) -> FileRejected:
    """The refusal of a row wider than the column limit (MAX_COLUMNS)."""
    return FileRejected(
        "too_many_columns",
        f"{where} has {count:,} columns; a user list may have at most {max_columns:,} "
        "(setting MAX_COLUMNS). Delete the columns you do not need, or check that the file is a user list.",
        row=row,
    )


def cell_too_long(where: str, row: int, hint: str = "") -> FileRejected:
    """The refusal of a cell longer than MAX_CELL characters (our words, not the csv module's)."""
    return FileRejected(
        "cell_too_long",
        f"{where} is longer than {MAX_CELL:,} characters (128 KB), the most a cell may hold. Shorten it."
        + hint,
        row=row,
    )


def cell_name(index: int, number: int) -> str:
    """A cell's spreadsheet name (B4) from a 0-based column index and a row number."""
    return f"{get_column_letter(index + 1)}{number}"


def clean(text: str) -> str:
    """Strip surrounding whitespace and the apostrophe our own result files put before = + - @."""
    text = text.strip()
    return text[1:].strip() if _NEUTRALISED.match(text) else text


def _find_header(records: Records, empty_message: str, sheets: list[str]) -> tuple[int, list[str]]:
    """Skip blank rows, leading '#' comments and a one-cell title line; check the row after them."""
    rows = ((number, cells) for number, cells in records if any(cells))
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        filled = [c for c in current[1] if c]
        comment = len(filled) == 1 and current[1][0].startswith("#")
        # A title such as Entra's "version:v1.0" sits alone on its line above the real header.
        title = len(filled) == 1 and following is not None and sum(map(bool, following[1])) > 1
        if not (comment or title):
            return current[0], _check_header(*current)
        current = following
    raise FileRejected("empty_file", empty_message, **({"sheets": sheets} if len(sheets) > 1 else {}))


def _check_header(number: int, cells: list[str]) -> list[str]:
    headers = cells[: max(i for i, c in enumerate(cells) if c) + 1]
    folded = [h.casefold() for h in headers]
    firsts = {key: i for i, key in reversed(list(enumerate(folded)))}

    def first(test: Callable[[int, str], object]) -> int:
        return next((i for i, h in enumerate(headers) if test(i, h)), -1)

    # Emails and dates are sure signs of data; a name repeated or left blank is a header with a fault.
    if (index := first(lambda _, h: _EMAIL.fullmatch(h) or _DATE.fullmatch(h))) >= 0:
        raise _no_header(number, index, headers[index])
    if (index := first(lambda _, h: not h)) >= 0:
        raise FileRejected(
            "blank_header",
            f"Column {index + 1} has no header (cell {cell_name(index, number)} is empty). "
            "Give every column a name, or delete the empty column.",
            row=number,
        )
    if (index := first(lambda i, _: firsts[folded[i]] < i)) >= 0:
        earlier = firsts[folded[index]]
        raise FileRejected(
            "duplicate_header",
            f"The header '{shown(headers[index])}' appears twice: in column {earlier + 1} (cell "
            f"{cell_name(earlier, number)}) and column {index + 1} (cell {cell_name(index, number)}). "
            "Give each column a different name.",
            row=number,
        )
    if (index := first(lambda _, h: _NUMBER.fullmatch(h))) >= 0:
        raise _no_header(number, index, headers[index])
    return headers


def _no_header(number: int, index: int, value: str) -> FileRejected:
    return FileRejected(
        "no_header",
        f"The first row must be a header that names the columns (for example Username, Email, Virtual "
        f"Extension), but cell {cell_name(index, number)} holds '{shown(value)}', which looks like data. "
        "Add a header row at the top.",
        row=number,
    )
