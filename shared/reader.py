"""Read an uploaded CSV or XLSX file into a header and rows of text, refusing bad files clearly."""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from shared.errors import FileRejected

# openpyxl warns about parts it drops (styles, extensions, validation); irrelevant to reading values.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")

SAVE_AS = "Save the user list as CSV (UTF-8) or as an Excel workbook (.xlsx) and upload it again."
EMPTY = "The file is empty. Upload a file with a header row and one row per user."
_MAGIC = {b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls) or a password-protected file", b"%PDF": "a PDF"}
_MAGIC |= {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image"}
_TEXT_NOT_CSV = {".json": "a JSON file", ".xml": "an XML document", ".html": "a web page"}
_MARKUP = re.compile(r"\s*<(\?xml|!doctype|html|table)", re.IGNORECASE)
_DELIMITERS = ",;\t|"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NEUTRALISED = re.compile(r"'(?=[=+\-@\t\r])")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([T ][\d:.]+)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")
# Zip bomb guards: a 500-row user list is well under a few MB of XML; deflate tops out near 1000:1.
_MAX_UNZIPPED, _MAX_RATIO, _RATIO_FLOOR = 64 * 1024 * 1024, 100, 1024 * 1024

Records = Iterator[tuple[int, list[str]]]


@dataclass(frozen=True)
class Row:
    """One data row: its sheet row number, its cells by header, and cells beyond the header."""

    number: int
    values: dict[str, str]
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inspection:
    """What the upload answer shows: format, headers, how many rows, the first few rows."""

    format: str
    headers: list[str]
    row_count: int
    preview: list[dict[str, str]]


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
    ) -> None:
        self.format = format
        self.encoding = encoding
        self.delimiter = delimiter
        self._records = records
        self._max_rows = max_rows
        self.header_row, self.headers = _find_header(records(), empty_message)

    def rows(self) -> Iterator[Row]:
        """Yield the data rows under the header, skipping blank ones; refuse more than max_rows."""
        width, seen = len(self.headers), 0
        for number, cells in self._records():
            if number <= self.header_row or not any(cells):
                continue
            seen += 1
            if seen > self._max_rows:
                raise FileRejected(
                    "too_many_rows",
                    f"The file has more than {self._max_rows} user rows (row {number} is user row "
                    f"{seen}). Split it into files of at most {self._max_rows} rows each.",
                    row=number,
                )
            padded = cells[:width] + [""] * (width - len(cells))
            yield Row(
                number, dict(zip(self.headers, padded, strict=True)), tuple(c for c in cells[width:] if c)
            )


def open_table(
    data: bytes, filename: str, *, max_rows: int, max_bytes: int, sheet: str | None = None
) -> Table:
    """Check an uploaded file (size, format, encoding, header) and return it as a Table."""
    if len(data) > max_bytes:
        size, limit = _size(len(data)), _size(max_bytes)
        raise FileRejected(
            "file_too_large", f"The file is {size}; the limit is {limit}. Split it into smaller files."
        )
    if not data:
        raise FileRejected("empty_file", EMPTY)
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise FileRejected("unsupported_format", f"This file is {what}, not a user list. {SAVE_AS}")
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a ZIP archive, as every .xlsx is
        return _open_xlsx(data, max_rows, sheet)
    return _open_csv(data, PurePath(filename).suffix.lower(), max_rows)


def inspect_table(
    data: bytes,
    filename: str,
    *,
    max_rows: int,
    max_bytes: int,
    sheet: str | None = None,
    preview_rows: int = 5,
) -> Inspection:
    """Read the whole file once: count its data rows and keep the first few as a preview."""
    table = open_table(data, filename, max_rows=max_rows, max_bytes=max_bytes, sheet=sheet)
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
    return Inspection(table.format, list(table.headers), count, preview)


def _find_header(records: Records, empty_message: str) -> tuple[int, list[str]]:
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
    raise FileRejected("empty_file", empty_message)


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
            f"Column {index + 1} has no header (cell {_cell(index, number)} is empty). "
            "Give every column a name, or delete the empty column.",
            row=number,
        )
    if (index := first(lambda i, _: firsts[folded[i]] < i)) >= 0:
        raise FileRejected(
            "duplicate_header",
            f"The header '{headers[index]}' appears twice: in column {firsts[folded[index]] + 1} (cell "
            f"{_cell(firsts[folded[index]], number)}) and column {index + 1} (cell {_cell(index, number)}). "
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
        f"Extension), but cell {_cell(index, number)} holds '{value}', which looks like data. "
        "Add a header row at the top.",
        row=number,
    )


def _cell(index: int, number: int) -> str:
    return f"{get_column_letter(index + 1)}{number}"


def _clean(text: str) -> str:
    """Strip surrounding whitespace and the apostrophe our own result files put before = + - @."""
    text = text.strip()
    return text[1:].strip() if _NEUTRALISED.match(text) else text


def _size(n: int) -> str:
    return f"{n / 1048576:.3g} MB" if n >= 1048576 else f"{n / 1024:.3g} KB" if n >= 1024 else f"{n} bytes"


def _open_csv(data: bytes, suffix: str, max_rows: int) -> Table:
    text, encoding = _decode(data)
    if suffix in _TEXT_NOT_CSV or _MARKUP.match(text):
        what = _TEXT_NOT_CSV.get(suffix, "an HTML or XML document")
        raise FileRejected("unsupported_format", f"This file is {what}, not a user list. {SAVE_AS}")
    # Decided: stray NULs (a damaged export) mean nothing in a user list, so they are dropped.
    text = text.replace("\x00", "")
    delimiter = _sniff_delimiter(text)

    def records() -> Records:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
        number = 0
        try:
            for number, cells in enumerate(reader, 1):
                yield number, [_clean(c) for c in cells]
        except csv.Error as exc:
            raise FileRejected(
                "unreadable_file",
                f"Row {number + 1} cannot be read as CSV ({exc}). Check the quotes in that row. {SAVE_AS}",
                row=number + 1,
            ) from exc

    return Table(
        "csv", records, max_rows=max_rows, empty_message=EMPTY, encoding=encoding, delimiter=delimiter
    )


def _decode(data: bytes) -> tuple[str, str]:
    """Decode by BOM, then UTF-16 by its NUL pattern, then UTF-8, then Windows-1252."""
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    for bom, encoding in boms:
        if data.startswith(bom):
            return _strict(data, encoding), encoding
    # Checked before UTF-8 because UTF-16 text of ASCII letters is also valid UTF-8 (full of NULs).
    encoding = _utf16_without_bom(data[:4096])
    if encoding:
        return _strict(data, encoding), encoding
    controls = sum(1 for b in data[:8192] if b < 32 and b not in b"\t\n\r\x0b\x0c\x1a")
    if controls * 20 > max(min(len(data), 8192), 100):  # archives, programs and other binaries
        raise FileRejected(
            "unsupported_format", f"This file is binary data, not a text or Excel file. {SAVE_AS}"
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _strict(data, "cp1252"), "cp1252"


def _utf16_without_bom(sample: bytes) -> str | None:
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    least = max(len(sample) // 2 * 0.3, 1)
    if odd >= least and even * 10 <= odd:
        return "utf-16-le"
    if even >= least and odd * 10 <= even:
        return "utf-16-be"
    return None


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        tried = "UTF-8, UTF-16 or Windows-1252" if encoding == "cp1252" else encoding.upper()
        raise FileRejected(
            "unreadable_file",
            f"The file's text cannot be read: byte {data[exc.start]:#04x} at position {exc.start} is not "
            f"valid {tried}. {SAVE_AS}",
        ) from exc


def _sniff_delimiter(text: str) -> str:
    """Pick , ; TAB or | as the most frequent outside quotes in the header line (first line with any)."""
    lines: list[str] = []
    for line in _LINE_BREAK.split(text[:65536]):
        if lines and lines[-1].count('"') % 2:  # a quoted cell runs on over this line break
            lines[-1] += "\n" + line
        elif line.strip():
            lines.append(line)
    for index, line in enumerate(lines[:50]):
        outside = line.split('"')[::2]
        counts = {d: sum(part.count(d) for part in outside) for d in _DELIMITERS}
        tied = "".join(d for d in _DELIMITERS if counts[d] and counts[d] == max(counts.values()))
        if len(tied) == 1:
            return tied
        if tied:
            # Sniffer only breaks ties (by the next lines): asked first, it picks "," over a commoner ";".
            try:
                return csv.Sniffer().sniff("\n".join(lines[index : index + 20]), tied).delimiter
            except csv.Error:
                return tied[0]
    return ","


def _open_xlsx(data: bytes, max_rows: int, sheet: str | None) -> Table:
    _check_zip(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types (KeyError, ValueError, XML errors) on bad parts
        raise _unreadable_xlsx("it is damaged or uses parts that cannot be read") from exc
    sheets = {ws.title: ws for ws in workbook.worksheets}
    if not sheets:
        raise _unreadable_xlsx("it has no worksheet")
    names = ", ".join(f"'{name}'" for name in sheets)
    if sheet is not None and sheet not in sheets:
        raise FileRejected("unreadable_file", f"The workbook has no sheet '{sheet}'; its sheets are {names}.")
    if sheet is None:
        visible = [ws for ws in sheets.values() if ws.sheet_state == "visible"]
        sheet = (visible or list(sheets.values()))[0].title
    worksheet = sheets[sheet]
    # Some writers declare A1:XFD1048576; without this every row is padded to 16,384 cells.
    worksheet.reset_dimensions()
    others = f" The workbook's sheets are {names}." if len(sheets) > 1 else ""
    empty = f"The sheet '{sheet}' is empty.{others}"
    return Table("xlsx", lambda: _xlsx_records(worksheet), max_rows=max_rows, empty_message=empty)


def _check_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos, names = archive.infolist(), set(archive.namelist())
        # Declared sizes can be trusted: zipfile stops at the declared size and then fails the CRC check.
        total = sum(info.file_size for info in infos)
        if total > _MAX_UNZIPPED or any(
            i.file_size > _RATIO_FLOOR and i.file_size > _MAX_RATIO * i.compress_size for i in infos
        ):
            raise _unreadable_xlsx(f"it unpacks to {_size(total)}, far more than a user list (a zip bomb?)")
        if "xl/workbook.xml" not in names:
            kinds = {"word/document.xml": "a Word document", "mimetype": "an OpenDocument file (.ods)"}
            kind = next((kind for part, kind in kinds.items() if part in names), "a ZIP archive")
            raise FileRejected("unsupported_format", f"This file is {kind}, not a user list. {SAVE_AS}")
        with archive.open("xl/workbook.xml") as part:
            strict = b"purl.oclc.org/ooxml/spreadsheetml" in part.read(4096)
    except (zipfile.BadZipFile, OSError, ValueError, zlib.error) as exc:
        raise _unreadable_xlsx("it is damaged (not a complete ZIP archive)") from exc
    if strict:
        raise _unreadable_xlsx("it is saved in the 'Strict Open XML Spreadsheet' format")


def _unreadable_xlsx(why: str) -> FileRejected:
    return FileRejected("unreadable_file", f"The Excel file cannot be read: {why}. {SAVE_AS}")


def _xlsx_records(worksheet: Any) -> Records:
    number = 0
    try:
        for number, cells in enumerate(worksheet.iter_rows(), 1):
            if cells:  # rows missing from the XML come back as (), and are blank
                yield number, [_clean(_cell_text(cell)) for cell in cells]
    except Exception as exc:  # openpyxl reads lazily: broken XML or a bad CRC surfaces here
        raise FileRejected(
            "unreadable_file",
            f"Row {number + 1} of the sheet cannot be read; the file is damaged. {SAVE_AS}",
            row=number + 1,
        ) from exc


def _cell_text(cell: Any) -> str:
    """Render a cell as a spreadsheet user sees it: 1001 not 1001.0, dates in ISO form."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            # 15 significant digits is what Excel shows; it hides binary noise (29.020000000000003).
            return format(Decimal(f"{value:.15g}"), "f")
        text = str(int(value))
        # A "00000" number format shows 6083 as 06083; extensions and IDs are often kept this way.
        if value >= 0 and set(cell.number_format or "-") == {"0"}:
            text = text.zfill(len(cell.number_format))
        return text
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        hours, rest = divmod(round(abs(value.total_seconds())), 3600)
        return f"{'-' if value < timedelta(0) else ''}{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)
