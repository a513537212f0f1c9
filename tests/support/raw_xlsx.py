"""Workbooks written part by part, so a test can put anything in the XML or in the ZIP around it."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


def cell(ref: str, value: object) -> str:
    """One <c> element: numbers as numbers, text inline."""
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def row(number: int, values: Iterable[object]) -> str:
    """One <row> element with its cells in columns A, B, C..."""
    cells = "".join(cell(f"{_letters(i)}{number}", v) for i, v in enumerate(values, 1) if v != "")
    return f'<row r="{number}">{cells}</row>'


def sheet(rows_xml: str, prolog: str = "") -> str:
    """A worksheet part around the given <row> elements."""
    body = f'<worksheet xmlns="{MAIN}"><sheetData>{rows_xml}</sheetData></worksheet>'
    return f'<?xml version="1.0" encoding="UTF-8"?>{prolog}{body}'


def users_sheet(*users: tuple[object, ...], header: tuple[str, ...] = ("Username", "Email")) -> str:
    """A sheet with a header row and one row per user, numbered in order."""
    return sheet(row(1, header) + "".join(row(i, u) for i, u in enumerate(users, 2)))


def workbook_parts(*sheets: tuple[str, str], shared_strings: str | None = None) -> dict[str, str | bytes]:
    """Every part a minimal workbook needs, for sheets given as (title, worksheet XML)."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SHEET_TYPE}"/>'
        for i in range(1, len(sheets) + 1)
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    if shared_strings is not None:
        overrides += (
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
        rels += f'<Relationship Id="rIdS" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    titles = "".join(
        f'<sheet name="{escape(title, {chr(34): "&quot;"})}" sheetId="{i}" r:id="rId{i}"/>'
        for i, (title, _) in enumerate(sheets, 1)
    )
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{_TYPES}">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f"{overrides}</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{_REL}">'
            f"<sheets>{titles}</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">{rels}</Relationships>'
        ),
    }
    for i, (_, xml) in enumerate(sheets, 1):
        parts[f"xl/worksheets/sheet{i}.xml"] = xml
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    return parts


def workbook(*sheets: tuple[str, str], shared_strings: str | None = None) -> bytes:
    """A minimal .xlsx of the given sheets."""
    return zipped(workbook_parts(*sheets, shared_strings=shared_strings))


def zipped(parts: dict[str, str | bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The parts as a ZIP archive, in the order given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()


def patch_directory(data: bytes, name: str, **fields: int) -> bytes:
    """Rewrite fields of one part's central directory entry (flags, crc, sizes, offset)."""
    offsets = {
        "flags": (8, "<H"),
        "crc": (16, "<I"),
        "compress_size": (20, "<I"),
        "file_size": (24, "<I"),
        "offset": (42, "<I"),
    }
    out = bytearray(data)
    position = out.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", out, position + 28)[0]
        if out[position + 46 : position + 46 + name_length] == name.encode():
            for field, value in fields.items():
                offset, fmt = offsets[field]
                struct.pack_into(fmt, out, position + offset, value)
            return bytes(out)
        position = out.find(b"PK\x01\x02", position + 4)
    raise KeyError(name)


def directory_entry(data: bytes, name: str) -> zipfile.ZipInfo:
    """One part's entry as the ZIP directory describes it."""
    return zipfile.ZipFile(io.BytesIO(data)).getinfo(name)


def _letters(column: int) -> str:
    letters = ""
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
