"""CSV files: encoding, delimiter, quotes, and the limits on columns and cells."""

from __future__ import annotations

import codecs
import csv
import io
import re

from shared.errors import FileRejected
from shared.files.table import (
    EMPTY,
    MAX_CELL,
    SAVE_AS,
    Records,
    Table,
    cell_name,
    cell_too_long,
    clean,
    too_many_columns,
)
from shared.text import shown

_TEXT_NOT_CSV = {".json": "a JSON file", ".xml": "an XML document", ".html": "a web page"}
_MARKUP = re.compile(r"\s*<(\?xml|!doctype|html|table)", re.IGNORECASE)
_JSON = re.compile(r'\s*(\{\s*"|\[\s*[\[{"\]])')
_DELIMITERS = ",;\t|"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ANSI = "Windows-1252 (ANSI)"
_END = "\ue000end"  # a private-use line no user file ends with: shows whether a quote is still open
_LINES_PER_ROW = 100  # lines a file may have per allowed row (blank lines, cells over several lines)


def open_csv(data: bytes, suffix: str, *, max_rows: int, max_columns: int) -> Table:
    """Decode and check a CSV file; its rows are parsed again on every pass (they are small)."""
    text, encoding = _decode(data)
    what = _TEXT_NOT_CSV.get(suffix) or ("an HTML or XML document" if _MARKUP.match(text) else None)
    if what or _JSON.match(text):
        what = what or "a JSON file"
        raise FileRejected("unsupported_format", f"This file is {what}, not a user list. {SAVE_AS}")
    # Decided: stray NULs (a damaged export) mean nothing in a user list, so they are dropped.
    text = text.replace("\x00", "")
    delimiter = _sniff_delimiter(text)
    # Blank rows below the users (a spreadsheet's formatted empty rows) go at C speed; a file that
    # still has far more lines than its users can need is refused before any row is parsed.
    text = text.rstrip(" \t\r\n" + delimiter)
    lines_count = max(text.count("\n"), text.count("\r")) + 1
    if lines_count > _LINES_PER_ROW * max_rows:
        raise FileRejected(
            "too_many_rows",
            f"The file has {lines_count:,} lines, far more than {max_rows:,} users need. Delete the empty "
            f"rows, or split it into files of at most {max_rows:,} rows each.",
        )
    # Lines split as the csv module splits them (\r, \n, \r\n), so a row's lines can be found again.
    lines = io.StringIO(text, newline="").readlines()

    def records() -> Records:
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
        number, start, end, cells = 0, 0, 0, []
        try:
            for number, cells in enumerate(reader, 1):
                start, end = end, reader.line_num
                if len(cells) > max_columns and any(c.strip() for c in cells[max_columns:]):
                    width = next(i for i in range(len(cells), 0, -1) if cells[i - 1].strip())
                    raise too_many_columns(f"Row {number}", width, max_columns, number)
                if end - start > 1 and _quote_closed_mid_cell(lines[start:end], delimiter):
                    index = next(i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell)
                    raise _unclosed_quote(number, index, start + 1, end)
                yield number, [clean(c) for c in cells]
        # With NULs gone, the one error left is a cell past csv's field limit (131,072, our MAX_CELL).
        except csv.Error as exc:
            raise _runaway_quote(lines, number + 1, end, delimiter) or cell_too_long(
                f"A cell in row {number + 1}", number + 1
            ) from exc
        if cells and _quote_left_open(lines[start:], delimiter):
            raise _unclosed_quote(number, len(cells) - 1, start + 1, len(lines))

    return Table(
        "csv", records, max_rows=max_rows, empty_message=EMPTY, encoding=encoding, delimiter=delimiter
    )


def _quote_closed_mid_cell(lines: list[str], delimiter: str) -> bool:
    """Whether a row over several lines has a quote closed with text after it, not a delimiter.

    That is a quote left open in an earlier row, closed by chance by the quote of a later one
    (csv reads on without a word); a quoted cell that really holds line breaks closes cleanly.
    """
    try:
        list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=True))
    except csv.Error:
        return True
    return False


def _quote_left_open(lines: list[str], delimiter: str) -> bool:
    """Whether the last row ends inside a quoted cell (csv then reads the rest of the file into it)."""
    reader = csv.reader([*lines, "\n", _END], delimiter=delimiter, skipinitialspace=True)
    try:
        *_, last = reader
    except csv.Error:  # the open cell passed the field limit: it is open too
        return True
    return last != [_END]


def _runaway_quote(lines: list[str], number: int, start: int, delimiter: str) -> FileRejected | None:
    """A cell past the limit that began with a quote on a short line: a quote left open, most likely."""
    first = lines[start] if start < len(lines) else ""
    if len(first) >= MAX_CELL or '"' not in first:
        return None
    cells = next(csv.reader([first], delimiter=delimiter, skipinitialspace=True), [""])
    return _unclosed_quote(number, len(cells) - 1, start + 1, None)


def _unclosed_quote(number: int, index: int, first_line: int, last_line: int | None) -> FileRejected:
    """A quote that runs on over lines that are rows of their own (to the end, or to a later quote)."""
    lines = (
        f"lines {first_line:,} to {last_line:,} of the file"
        if last_line
        else f"the file from line {first_line:,} on"
    )
    return FileRejected(
        "unreadable_file",
        f'Row {number}: the quote (") that opens cell {cell_name(index, number)} is not closed where the '
        f"cell ends, so {lines} would be read into that one cell. Close the quote or delete "
        "it, then upload the file again.",
        row=number,
    )


def _decode(data: bytes) -> tuple[str, str]:
    """Decode by BOM, then UTF-16 by its NUL pattern, then UTF-8, then Windows-1252; never a mix."""
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
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
    marked = data.startswith(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if marked else "utf-8"
    except UnicodeDecodeError:
        pass
    lines = data.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)
    utf8 = [i for i, line in enumerate(lines) if not line.isascii() and _is_utf8(line)]
    if not utf8 and not marked:
        return _strict(data, "cp1252"), "cp1252"
    raise _mixed_encodings(lines, utf8, marked)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mixed_encodings(lines: list[bytes], utf8: list[int], marked: bool) -> FileRejected:
    """Refuse a file whose lines are partly UTF-8, partly Windows-1252, naming the odd rows."""
    ansi = [i for i, line in enumerate(lines) if not _is_utf8(line)]
    texts = [line.decode("utf-8") if _is_utf8(line) else line.decode("cp1252", "replace") for line in lines]
    rows = _row_numbers(texts)
    odd, odd_name, main = (
        (ansi, _ANSI, "UTF-8") if marked or len(ansi) <= len(utf8) else (utf8, "UTF-8", _ANSI)
    )
    numbers = sorted({rows[i] for i in odd})
    listed = ", ".join(map(str, numbers[:5])) + (
        f" and {len(numbers) - 5:,} more" if len(numbers) > 5 else ""
    )
    first, sample = rows[odd[0]], shown(texts[odd[0]].strip())
    which = (
        f"row {first} is {odd_name}:"
        if len(numbers) == 1
        else (f"rows {listed} are {odd_name}, starting with row {first}:")
    )
    return FileRejected(
        "mixed_encoding",
        f"The file mixes two text encodings: it is mostly {main}, but {which} '{sample}'. Save the whole "
        "file again as CSV UTF-8 and upload it again.",
        row=first,
    )


def _row_numbers(lines: list[str]) -> list[int]:
    """The CSV row each line belongs to (a quoted cell may span lines)."""
    reader = csv.reader(lines, delimiter=_sniff_delimiter("".join(lines[:50])))
    numbers: list[int] = []
    try:
        for number, _ in enumerate(reader, 1):
            numbers += [number] * (reader.line_num - len(numbers))
    except csv.Error:
        pass
    return numbers + list(range(len(numbers) + 1, len(lines) + 1))


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
        line = data[: exc.start].count(b"\n") + 1
        where = (
            f"on line {line:,} (position {exc.start:,})"
            if encoding == "cp1252"
            else f"at position {exc.start:,}"
        )
        raise FileRejected(
            "unreadable_file",
            f"The file's text cannot be read: byte {data[exc.start]:#04x} {where} is not valid {tried}. "
            f"{SAVE_AS}",
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
