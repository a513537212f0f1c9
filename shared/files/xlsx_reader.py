"""XLSX workbooks: the sheet chosen, its rows read in sheet order, blank rows never padded out."""

from __future__ import annotations

import io
import warnings
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import iterparse

from defusedxml.common import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from openpyxl import load_workbook
from openpyxl.cell.read_only import ReadOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS

from shared.errors import FileRejected
from shared.files.archive import check_workbook_archive, unreadable_xlsx
from shared.files.table import (
    MAX_CELL,
    SAVE_AS,
    Table,
    cell_too_long,
    clean,
    too_many_columns,
)
from shared.text import shown

# openpyxl warns about parts it drops (styles, extensions, validation); irrelevant to reading values.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")

EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384
_ROW, _CELL, _VALUE, _FORMULA, _DATA = (
    f"{{{SHEET_MAIN_NS}}}{tag}" for tag in ("row", "c", "v", "f", "sheetData")
)

SheetRows = list[tuple[int, list[str]]]


def open_xlsx(data: bytes, *, max_rows: int, max_columns: int, sheet: str | None) -> Table:
    """Check the archive, open the workbook, and read the chosen sheet (the first visible by default)."""
    check_workbook_archive(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types (KeyError, ValueError, XML errors) on bad parts
        attack = _xml_attack(exc)
        raise unreadable_xlsx(attack or "it is damaged or uses parts that cannot be read") from exc
    worksheets = workbook.worksheets
    if not worksheets:
        raise unreadable_xlsx("it has no worksheet that can be read (none, or their parts are missing)")
    titles = [ws.title for ws in worksheets]
    names = ", ".join(f"'{shown(title)}'" for title in titles)
    if sheet is not None and sheet not in titles:
        raise FileRejected(
            "unreadable_file",
            f"The workbook has no sheet '{shown(sheet)}'; its sheets are {names}.",
            sheets=titles,
        )
    visible = [ws for ws in worksheets if ws.sheet_state == "visible"] or worksheets
    worksheet = worksheets[titles.index(sheet)] if sheet is not None else visible[0]
    rows = _read_sheet(worksheet, max_columns)
    empty = f"The sheet '{shown(worksheet.title)}' is empty."
    if len(titles) > 1:
        empty += (
            f" The workbook's sheets are {names}: choose the one that holds the users (send its name as "
            "the upload's sheet field), or move the users to the first sheet."
        )
    return Table(
        "xlsx",
        lambda: iter(rows),
        max_rows=max_rows,
        empty_message=empty,
        sheet=worksheet.title,
        sheets=titles,
    )


def _xml_attack(error: BaseException | None) -> str | None:
    """What an XML trick defusedxml stopped was, if it stopped one (openpyxl wraps its errors)."""
    while error is not None and not isinstance(error, DefusedXmlException):
        error = error.__cause__ or error.__context__
    if error is None:
        return None
    if isinstance(error, ExternalReferenceForbidden) or (
        isinstance(error, EntitiesForbidden) and (error.sysid or error.pubid)
    ):
        return "it refers to an outside file or address (an XML external entity, XXE)"
    if isinstance(error, EntitiesForbidden):
        return "it declares XML entities (as in the 'billion laughs' expansion attack)"
    return "it uses XML features spreadsheet programs never write (a DOCTYPE)"


def _read_sheet(worksheet: Any, max_columns: int) -> SheetRows:
    """Every filled row, in row-number order whatever the XML's order; blank rows cost nothing.

    openpyxl's read-only row iterator drops a row numbered lower than one already read, and
    yields an empty row for every missing number before the next one (200,000,000 of them for
    one row numbered so). So the rows are walked here, and each cell is handed to openpyxl's own
    cell parser (types, shared strings, dates), set up as openpyxl's ReadOnlyWorksheet sets it up
    (the private names below are the ones it uses; the reader tests catch an openpyxl that moves
    them). The plain (C) ElementTree parser is safe here: the archive check refused any DOCTYPE, so
    no entity can be declared, and defusedxml already saw this part when openpyxl opened the workbook.
    """
    book = worksheet.parent
    parser = WorkSheetParser(
        None,
        worksheet._shared_strings,
        data_only=True,
        epoch=book.epoch,
        date_formats=book._date_formats,
        timedelta_formats=book._timedelta_formats,
    )
    rows: dict[int, list[str]] = {}
    number, cells, container = 0, {}, None
    try:
        with worksheet._get_source() as source:
            for event, element in iterparse(source, events=("start", "end")):
                if event == "start":
                    if element.tag == _ROW:
                        number, cells = _row_number(element.get("r"), number), {}
                        parser.row_counter, parser.col_counter = number, 0
                    elif element.tag == _DATA:
                        container = element
                elif element.tag == _CELL:
                    if len(element):  # a cell with no <v>, <f> or <is> is only formatting
                        _read_cell(worksheet, parser, element, number, cells, max_columns)
                    else:
                        parser.col_counter += 1  # as parse_cell counts, for cells without a reference
                    element.clear()
                elif element.tag == _ROW and container is not None:
                    if cells and number in rows:
                        raise _damaged_row(number, "it appears twice in the sheet")
                    if cells:
                        rows[number] = [cells.get(c, "") for c in range(1, max(cells) + 1)]
                    container.clear()  # finished rows are not kept in the tree
    except FileRejected:
        raise
    except Exception as exc:  # broken XML, a bad style or string index, a bad cell reference
        attack = _xml_attack(exc)
        raise (
            unreadable_xlsx(attack) if attack else _damaged_row(number or 1, "the file is damaged")
        ) from exc
    return sorted(rows.items())


def _row_number(raw: str | None, previous: int) -> int:
    try:
        number = previous + 1 if raw is None else int(raw)
    except ValueError:
        number = None
    if number is None or not 1 <= number <= EXCEL_ROWS:
        shown_number = f"{number:,}" if number is not None else f"'{shown(str(raw))}'"
        raise FileRejected(
            "unreadable_file",
            f"The sheet has a row numbered {shown_number}, but a sheet has at most {EXCEL_ROWS:,} rows: "
            f"the file is damaged or made to attack. {SAVE_AS}",
            row=number if number and number > 0 else None,
        )
    return number


def _read_cell(
    worksheet: Any,
    parser: WorkSheetParser,
    element: Any,
    number: int,
    cells: dict[int, str],
    max_columns: int,
) -> None:
    """Read one <c> element into cells (by column), refusing what no user list holds."""
    if (
        element.find(_FORMULA) is not None
        and element.find(_VALUE) is None
        and element.get("t") != "inlineStr"
    ):
        name = element.get("r") or f"{get_column_letter(parser.col_counter + 1)}{number}"
        raise FileRejected(
            "unsaved_formula",
            f"Cell {shown(name)} holds a formula without a saved value: open and save the file in a "
            "spreadsheet, then upload it again.",
            row=number,
        )
    parsed = parser.parse_cell(element)
    column = parsed["column"]
    if column > EXCEL_COLUMNS:
        raise _damaged_row(number, f"it has a cell in column {column:,}, past Excel's last column XFD")
    text = clean(
        _cell_text(
            ReadOnlyCell(worksheet, number, column, parsed["value"], parsed["data_type"], parsed["style_id"])
        )
    )
    if not text:
        return
    name = f"{get_column_letter(column)}{number}"
    if column > max_columns:
        raise too_many_columns(f"Row {number} (cell {name} holds a value)", column, max_columns, number)
    if len(text) > MAX_CELL:
        raise cell_too_long(f"Cell {name}", number)
    cells[column] = text


def _damaged_row(number: int, why: str) -> FileRejected:
    return FileRejected(
        "unreadable_file", f"Row {number:,} of the sheet cannot be read: {why}. {SAVE_AS}", row=number
    )


def _cell_text(cell: ReadOnlyCell) -> str:
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
