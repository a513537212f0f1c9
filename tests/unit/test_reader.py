"""The reader: what users upload comes back as the cells they typed, or as a clear refusal."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import datetime, time

import openpyxl
import openpyxl.xml
import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table, open_table

LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}


def table(data: bytes, name: str = "users.csv", **kw):
    return open_table(data, name, **{**LIMITS, **kw})


def rows(data: bytes, name: str = "users.csv", **kw) -> list[dict[str, str]]:
    return [r.values for r in table(data, name, **kw).rows()]


def refused(data: bytes, name: str = "users.csv", **kw) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        inspect_table(data, name, **{**LIMITS, **kw})
    return caught.value


def xlsx(*sheets: tuple[str, list[list]], hidden: tuple[str, ...] = ()) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, lines in sheets:
        sheet = workbook.create_sheet(title)
        for line in lines:
            sheet.append(line)
        if title in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def rezip(data: bytes, part: str, change) -> bytes:
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            content = source.read(name)
            target.writestr(name, change(content) if name == part else content)
    return out.getvalue()


USERS = b"Username,Email,Ext\r\njdoe,jdoe@example.com,1001\r\nasmith,asmith@example.com,1002\r\n"


def test_csv_reads_cells_as_text_by_header():
    t = table(USERS)
    assert (t.format, t.headers, t.header_row, t.encoding, t.delimiter) == (
        "csv",
        ["Username", "Email", "Ext"],
        1,
        "utf-8",
        ",",
    )
    got = list(t.rows())
    assert [r.number for r in got] == [2, 3]
    assert got[0].values == {"Username": "jdoe", "Email": "jdoe@example.com", "Ext": "1001"}
    assert list(t.rows()) == got  # restartable


def test_inspect_counts_rows_and_previews_the_first_five():
    data = b"Username,Email\n" + b"".join(b"u%d,u%d@example.com\n" % (i, i) for i in range(8))
    found = inspect_table(data, "users.csv", **LIMITS)
    assert (found.format, found.headers, found.row_count) == ("csv", ["Username", "Email"], 8)
    assert [p["Username"] for p in found.preview] == ["u0", "u1", "u2", "u3", "u4"]


def test_501_data_rows_are_too_many_and_the_row_is_named():
    data = b"Username\n" + b"".join(b"user%d\n" % i for i in range(501))
    error = refused(data)
    assert (error.code, error.row, error.status) == ("too_many_rows", 502, 400)
    assert "500" in error.message and "502" in error.message
    assert inspect_table(data[: data.rindex(b"user500")], "u.csv", **LIMITS).row_count == 500
    streamed = table(data).rows()
    assert len([next(streamed) for _ in range(500)]) == 500
    with pytest.raises(FileRejected, match="more than 500"):
        next(streamed)


def test_a_file_over_the_size_limit_is_refused_before_reading():
    error = refused(b"Username\n" + b"x" * (6 * 1024 * 1024))
    assert (error.code, error.status) == ("file_too_large", 413)
    assert "6 MB" in error.message and "5 MB" in error.message


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "(.xls)"),
        (random.Random(7).randbytes(4096), "binary"),
        (b"<html><body><table><tr><td>Username</td></tr></table></body></html>", "HTML"),
    ],
)
def test_files_that_are_not_user_lists_say_what_they_are(data, what):
    error = refused(data, "users.csv")
    assert (error.code, error.status) == ("unsupported_format", 415)
    assert what in error.message and "CSV" in error.message and ".xlsx" in error.message


def test_zip_files_other_than_workbooks_are_unsupported():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    error = refused(out.getvalue(), "users.xlsx")
    assert error.code == "unsupported_format" and "Word document" in error.message
    assert refused(b'[{"email": "a@b.co"}]', "users.json").code == "unsupported_format"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"\xef\xbb\xbf", "empty_file"),
        (b"\r\n\r\n  \r\n", "empty_file"),
        (b",,\n,,\n", "empty_file"),
        (b"Username,Email\r\n", "empty_file"),
        (b"Username,Email\r\n,\r\n\r\n", "empty_file"),
    ],
)
def test_files_without_user_rows_are_empty(data, code):
    assert refused(data).code == code


def test_a_first_row_of_data_is_no_header():
    error = refused(b"jdoe,jdoe@example.com,1001\nasmith,asmith@example.com,1002\n")
    assert (error.code, error.row) == ("no_header", 1)
    assert "Username" in error.message and "B1" in error.message and "jdoe@example.com" in error.message
    assert refused(b"jdoe,1001\n").code == "no_header"
    assert table(b"Username,Start\njdoe,2024-01-31\n").headers == ["Username", "Start"]
    assert refused(b"Username,31/01/2024\n").code == "no_header"


def test_blank_and_duplicate_headers_name_the_columns():
    blank = refused(b"Username,Email,,Ext\njdoe,j@example.com,x,1001\n")
    assert (blank.code, blank.row) == ("blank_header", 1)
    assert "Column 3 has no header" in blank.message
    dup = refused(b"Username,Email,Ext,EMAIL\njdoe,j@example.com,1001,x\n")
    assert dup.code == "duplicate_header"
    assert "'EMAIL'" in dup.message and "column 2" in dup.message and "column 4" in dup.message


def test_trailing_empty_header_cells_are_not_columns():
    t = table(b"Username,Email,,\njdoe,j@example.com,,\n")
    assert t.headers == ["Username", "Email"]


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b"Username;Email;Ext\njdoe;j@example.com;1001\n", ";"),
        (b"Username\tEmail\tExt\njdoe\tj@example.com\t1001\n", "\t"),
        (b"Username|Email|Ext\njdoe|j@example.com|1001\n", "|"),
        (b'"Username","Email, work","Ext"\njdoe,j@example.com,1001\n', ","),
        (b"Username;Full name, title;Ext\njdoe;Doe, John;1001\n", ";"),
    ],
)
def test_delimiter_is_detected_from_the_header(data, delimiter):
    t = table(data)
    assert t.delimiter == delimiter and len(t.headers) == 3
    assert next(t.rows()).values[t.headers[2]] == "1001"


def test_a_delimiter_tie_in_the_header_is_settled_by_the_rows_below():
    t = table(b"Username;Name, title\njdoe;Doe\nasmith;Smith\n")
    assert t.delimiter == ";" and t.headers == ["Username", "Name, title"]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"\xef\xbb\xbfUsername,Name\nmm,M\xc3\xbcller\n", "utf-8-sig"),
        (b"Username,Name\nmm,M\xc3\xbcller\n", "utf-8"),
        (b"Username,Name\nmm,M\xfcller\n", "cp1252"),
        (b"\xff\xfe" + "Username,Name\r\nmm,Müller\r\n".encode("utf-16-le"), "utf-16"),
        (b"\xfe\xff" + "Username,Name\r\nmm,Müller\r\n".encode("utf-16-be"), "utf-16"),
        ("Username,Name\r\nmm,Müller\r\n".encode("utf-16-le"), "utf-16-le"),
        ("Username\tName\r\nmm\tMüller\r\n".encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_encodings_read_muller(data, encoding):
    t = table(data)
    assert t.encoding == encoding and t.headers == ["Username", "Name"]
    assert [r.values for r in t.rows()] == [{"Username": "mm", "Name": "Müller"}]


def test_text_in_no_supported_encoding_is_unreadable():
    error = refused("ユーザー名,メール\n".encode("shift_jis"))
    assert error.code == "unreadable_file" and "UTF-8" in error.message


@pytest.mark.parametrize("newline", [b"\r\n", b"\n", b"\r"])
def test_line_endings_and_quoted_newlines(newline):
    data = newline.join([b"Username,Note", b'jdoe,"two' + newline + b'lines"', b"asmith,x", b""])
    got = table(data).rows()
    first, second = next(got), next(got)
    assert first.values["Note"] == "two" + newline.decode() + "lines"
    assert (first.number, second.number, second.values["Username"]) == (2, 3, "asmith")


def test_blank_rows_are_skipped_but_still_counted():
    data = b"\n\nUsername,Email\n\njdoe,j@example.com\n , \n\nasmith,a@example.com\n"
    t = table(data)
    assert t.header_row == 3
    assert [(r.number, r.values["Username"]) for r in t.rows()] == [(5, "jdoe"), (8, "asmith")]


def test_ragged_rows_are_padded_and_extra_cells_kept_aside():
    got = list(table(b"Username,Email,Ext\njdoe\nasmith,a@example.com,1002,,surplus,\n").rows())
    assert got[0].values == {"Username": "jdoe", "Email": "", "Ext": ""} and got[0].extra == ()
    assert got[1].values["Ext"] == "1002" and got[1].extra == ("surplus",)


def test_cells_are_stripped_and_our_formula_apostrophe_removed():
    data = b"Username,Note\n  jdoe  ,'=1+2\nb,'+x\nc,'-5\nd,'@home\ne,'plain\n"
    assert [r["Note"] for r in rows(data)] == ["=1+2", "+x", "-5", "@home", "'plain"]


def test_preamble_line_and_comments_above_the_header_are_skipped():
    entra = b"version:v1.0\nName,User name [userPrincipalName] Required\nAl,al@example.com\n"
    t = table(entra)
    assert t.header_row == 2 and rows(entra) == [
        {"Name": "Al", "User name [userPrincipalName] Required": "al@example.com"}
    ]
    commented = b"# exported 2024-01-31\n# by the HR tool\nUsername,Email\njdoe,j@example.com\n"
    assert table(commented).header_row == 3


def test_nul_bytes_are_dropped_not_fatal():
    assert rows(b"Username,Email\njd\x00oe,j@example.com\n") == [
        {"Username": "jdoe", "Email": "j@example.com"}
    ]


def test_xlsx_cells_read_as_a_spreadsheet_shows_them():
    data = xlsx(
        (
            "Users",
            [
                ["Username", "Ext", "Zip", "Score", "Active", "Start", "Seen", "At", "Empty"],
                ["jdoe", 1001, "0042", 29.020000000000003, True, datetime(2024, 1, 31), None, time(8, 30)],
                [
                    "amy",
                    1002.0,
                    "007",
                    0.5,
                    False,
                    datetime(2024, 1, 31, 8, 30),
                    datetime(2024, 2, 1, 9, 5, 7),
                ],
            ],
        )
    )
    t = table(data, "users.xlsx")
    assert (t.format, t.encoding, t.delimiter) == ("xlsx", None, None)
    first, second = list(t.rows())
    assert first.values == {
        "Username": "jdoe",
        "Ext": "1001",
        "Zip": "0042",
        "Score": "29.02",
        "Active": "TRUE",
        "Start": "2024-01-31",
        "Seen": "",
        "At": "08:30:00",
        "Empty": "",
    }
    assert second.values["Ext"] == "1002" and second.values["Active"] == "FALSE"
    assert second.values["Start"] == "2024-01-31T08:30:00" and second.values["Seen"] == "2024-02-01T09:05:07"


def test_xlsx_zero_padded_number_format_keeps_its_zeros():
    workbook = openpyxl.Workbook()
    workbook.active.append(["Ext"])
    workbook.active.append([42])
    workbook.active["A2"].number_format = "0000"
    out = io.BytesIO()
    workbook.save(out)
    assert rows(out.getvalue(), "u.xlsx") == [{"Ext": "0042"}]


def test_xlsx_rows_numbers_blank_rows_and_extra_cells():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["B3"], sheet["C3"] = "Username", "Email"
    sheet["B5"], sheet["C5"], sheet["E5"] = "jdoe", "j@example.com", "note"
    sheet["B7"] = "asmith"
    sheet["B9"].number_format = "0"  # styled but empty: not a row
    out = io.BytesIO()
    workbook.save(out)
    error = refused(out.getvalue(), "u.xlsx")
    assert (error.code, error.message.split(" (")[0]) == ("blank_header", "Column 1 has no header")
    sheet.delete_cols(1)
    out = io.BytesIO()
    workbook.save(out)
    got = list(table(out.getvalue(), "u.xlsx").rows())
    assert [(r.number, r.values["Username"], r.extra) for r in got] == [
        (5, "jdoe", ("note",)),
        (7, "asmith", ()),
    ]


def test_xlsx_sheet_choice():
    data = xlsx(
        ("Old", [["Username"], ["hidden1"]]),
        ("Users", [["Username"], ["jdoe"]]),
        ("Others", [["Username"], ["other"]]),
        hidden=("Old",),
    )
    assert rows(data, "u.xlsx") == [{"Username": "jdoe"}]  # the first sheet the user can see
    assert rows(data, "u.xlsx", sheet="Others") == [{"Username": "other"}]
    error = refused(data, "u.xlsx", sheet="Nope")
    assert error.code == "unreadable_file" and "'Nope'" in error.message and "'Users'" in error.message


def test_xlsx_too_many_rows():
    data = xlsx(("Users", [["Username"], *([f"u{i}"] for i in range(11))]))
    error = refused(data, "u.xlsx", max_rows=10)
    assert (error.code, error.row) == ("too_many_rows", 12)


def test_damaged_xlsx_is_unreadable():
    data = xlsx(("Users", [["Username"], ["jdoe"]]))
    assert refused(data[: len(data) // 2], "u.xlsx").code == "unreadable_file"
    broken = rezip(data, "xl/worksheets/sheet1.xml", lambda xml: xml[:-40])
    assert refused(broken, "u.xlsx").code == "unreadable_file"


def test_openpyxl_parses_through_defusedxml():
    assert openpyxl.xml.DEFUSEDXML is True


def test_xml_entity_expansion_is_refused():
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE worksheet [{entities}]>'.encode()
    data = xlsx(("Users", [["Username"], ["jdoe"]]))
    for part in ("xl/worksheets/sheet1.xml", "xl/workbook.xml"):
        evil = rezip(data, part, lambda xml: bomb + xml.replace(b"jdoe", b"&a9;"))
        assert refused(evil, "u.xlsx").code == "unreadable_file"


def test_zip_bomb_is_refused_before_openpyxl_unpacks_it():
    data = xlsx(("Users", [["Username"], ["jdoe"]]))
    padded = rezip(data, "xl/worksheets/sheet1.xml", lambda xml: xml + b" " * (3 * 1024 * 1024))
    assert len(padded) < 100_000
    error = refused(padded, "u.xlsx")
    assert error.code == "unreadable_file" and "zip bomb" in error.message


def test_format_follows_the_content_not_the_name():
    workbook = xlsx(("Users", [["Username"], ["jdoe"]]))
    assert table(workbook, "users.csv").format == "xlsx"
    assert table(b"Username\njdoe\n", "users.xlsx").format == "csv"
    assert table(b"PKey,Username\n7,jdoe\n").headers == ["PKey", "Username"]


def test_a_runaway_quoted_cell_is_unreadable_with_its_row():
    error = refused(b'Username,Note\njdoe,ok\nasmith,"never closed\n' + b"x" * 200_000)
    assert (error.code, error.row) == ("unreadable_file", 3)
