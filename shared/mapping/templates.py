"""Downloadable import templates: a header with every field and one example row."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from shared.files.result_files import csv_bytes
from shared.mapping.fields import FIELDS

# The SIP columns are not fields of their own: the mapping's SIP settings name them.
_SIP_COLUMNS = ["PBX Device", "SIP URI"]
TEMPLATE_HEADERS: list[str] = [f.template_header for f in FIELDS] + _SIP_COLUMNS
EXAMPLE_ROW: list[str] = [f.example for f in FIELDS] + [""] * len(_SIP_COLUMNS)
# Cells Excel should hold as numbers, as a user typing them would get.
_NUMERIC = {f.template_header for f in FIELDS if f.numeric_example}


def template_csv() -> bytes:
    """The template as CSV: UTF-8 with BOM and CRLF, so Excel opens it with the right encoding."""
    return csv_bytes([TEMPLATE_HEADERS, EXAMPLE_ROW])


def template_xlsx() -> bytes:
    """The template as an Excel workbook: bold header, sized columns, numbers where Excel has them."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Users"
    sheet.append(TEMPLATE_HEADERS)
    sheet.append(
        [int(v) if h in _NUMERIC else v or None for h, v in zip(TEMPLATE_HEADERS, EXAMPLE_ROW, strict=True)]
    )
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        sheet.column_dimensions[cell.column_letter].width = max(len(cell.value), 12) + 2
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
