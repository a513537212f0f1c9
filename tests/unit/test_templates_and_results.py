"""Files we hand out: templates and result files, and how they read back through the reader."""

from __future__ import annotations

import io

import openpyxl

from shared.files.reader import inspect_table, open_table
from shared.files.result_files import SuccessRow, errors_csv, neutralise, success_csv
from shared.mapping.templates import TEMPLATE_HEADERS, template_csv, template_xlsx

LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}
EXAMPLE = dict(
    zip(
        TEMPLATE_HEADERS,
        ["jdoe", "jdoe@example.com", "1001", "1", "John", "Doe", "1", "1;2", "+1 202 555 0143", "", ""],
        strict=True,
    )
)


def test_csv_template_is_excel_friendly_and_reads_back():
    data = template_csv()
    assert data.startswith(b"\xef\xbb\xbfUsername,Email,Virtual Extension,") and data.count(b"\r\n") == 2
    found = inspect_table(data, "template.csv", **LIMITS)
    assert (found.headers, found.row_count, found.preview) == (TEMPLATE_HEADERS, 1, [EXAMPLE])


def test_xlsx_template_has_a_bold_header_a_number_and_reads_back():
    data = template_xlsx()
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [c.value for c in sheet[1]] == TEMPLATE_HEADERS and all(c.font.b for c in sheet[1])
    assert sheet["C2"].value == 1001 and sheet.column_dimensions["B"].width >= 10
    found = inspect_table(data, "template.xlsx", **LIMITS)
    assert (found.format, found.headers, found.preview) == ("xlsx", TEMPLATE_HEADERS, [EXAMPLE])


def test_neutralise_prefixes_formula_starts_only():
    cells = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "jdoe", "", "a=b", "'=x"]
    assert [neutralise(c) for c in cells] == [
        "'=1+2",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "jdoe",
        "",
        "a=b",
        "'=x",
    ]


def test_errors_file_round_trips_through_the_reader():
    headers = ["Username", "Email", "=Formula header"]
    rows = [
        (
            2,
            {"Username": "jdoe", "Email": "=cmd|' /C calc'!A0", "=Formula header": "-5"},
            ["Email is invalid"],
        ),
        (4, {"Username": "@bob", "Email": "b@example.com"}, ["Username is taken", "Role 9 does not exist"]),
    ]
    data = errors_csv(headers, rows)
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and b"'=cmd" in data and b"'@bob" in data
    table = open_table(data, "errors.csv", **LIMITS)
    assert table.headers == [*headers, "Row", "Errors"]
    assert [r.values for r in table.rows()] == [
        {**rows[0][1], "Row": "2", "Errors": "Email is invalid"},
        {
            "Username": "@bob",
            "Email": "b@example.com",
            "=Formula header": "",
            "Row": "4",
            "Errors": "Username is taken; Role 9 does not exist",
        },
    ]


def test_a_reuploaded_errors_file_yields_a_clean_errors_file():
    first = errors_csv(["Username"], [(2, {"Username": "x"}, ["Too short"])])
    table = open_table(first, "errors.csv", **LIMITS)
    again = errors_csv(table.headers, [(r.number, r.values, ["Still too short"]) for r in table.rows()])
    reread = open_table(again, "errors.csv", **LIMITS)
    assert reread.headers == ["Username", "Row", "Errors"]
    assert [r.values for r in reread.rows()] == [{"Username": "x", "Row": "2", "Errors": "Still too short"}]


def _success(number: int, user: str, ext: str, password: str, sip: str = "") -> SuccessRow:
    values = {"Username": user, "Email": f"{user}@x.io", "Virtual Extension": ext, "SIP Device/URI": sip}
    return SuccessRow(number, values, password)


FIRST, OPTIONAL = ["Username", "Email", "Virtual Extension"], ["SIP Device/URI"]


def test_success_file_lists_created_users_and_sip_only_when_set():
    plain = success_csv(FIRST, OPTIONAL, [_success(2, "jdoe", "1001", "-Xy7pQ")])
    assert plain == (
        b"\xef\xbb\xbfRow,Username,Email,Virtual Extension,Temporary Password\r\n"
        b"2,jdoe,jdoe@x.io,1001,'-Xy7pQ\r\n"
    )
    rows = [_success(2, "a", "1001", "p1"), _success(3, "b", "1002", "p2", "sip:1002@pbx")]
    table = open_table(success_csv(FIRST, OPTIONAL, iter(rows)), "success.csv", **LIMITS)
    assert table.headers[-1] == "SIP Device/URI"
    assert [r.values["SIP Device/URI"] for r in table.rows()] == ["", "sip:1002@pbx"]
    assert [r.values["Temporary Password"] for r in table.rows()] == ["p1", "p2"]
