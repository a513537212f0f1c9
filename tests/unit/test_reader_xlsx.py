"""Workbooks whose XML is unusual or hostile: row order, row numbers, width, formulas, sheets."""

from __future__ import annotations

import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table, open_table
from tests.support.raw_xlsx import row, sheet, users_sheet, workbook

LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}
HEADER = row(1, ["Username", "Email"])


def read(data: bytes, **kw) -> list[tuple[int, dict[str, str]]]:
    return [(r.number, r.values) for r in open_table(data, "u.xlsx", **{**LIMITS, **kw}).rows()]


def refused(data: bytes, **kw) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        inspect_table(data, "u.xlsx", **{**LIMITS, **kw})
    return caught.value


def user(number: int) -> str:
    return row(number, [f"u{number}", f"u{number}@example.com"])


def test_rows_numbered_1_3_2_4_are_all_read_in_sheet_order():
    got = read(workbook(("Users", sheet(HEADER + user(3) + user(2) + user(4)))))
    assert [(number, values["Username"]) for number, values in got] == [(2, "u2"), (3, "u3"), (4, "u4")]


def test_rows_without_numbers_follow_the_one_before():
    rows = HEADER + '<row><c t="inlineStr"><is><t>u2</t></is></c><c t="inlineStr"><is><t>e</t></is></c></row>'
    assert read(workbook(("Users", sheet(rows)))) == [(2, {"Username": "u2", "Email": "e"})]


def test_a_row_numbered_200_000_000_in_a_tiny_file_is_refused():
    data = workbook(("Users", sheet(HEADER + user(2) + row(200_000_000, ["z", "z@example.com"]))))
    assert len(data) < 2000
    error = refused(data)
    assert (error.code, error.row) == ("unreadable_file", 200_000_000)
    assert "200,000,000" in error.message and "1,048,576" in error.message


def test_blank_rows_up_to_the_last_row_of_excel_cost_nothing():
    data = workbook(("Users", sheet(HEADER + user(2) + user(1_048_576))))
    assert [number for number, _ in read(data)] == [2, 1_048_576]


def test_a_row_numbered_twice_is_damaged():
    error = refused(workbook(("Users", sheet(HEADER + user(2) + user(2)))))
    assert (error.code, error.row) == ("unreadable_file", 2) and "twice" in error.message


@pytest.mark.parametrize("number", ["0", "-3", "two", "1.5"])
def test_row_numbers_outside_a_sheet_are_refused(number):
    rows = HEADER + f'<row r="{number}"><c t="inlineStr"><is><t>x</t></is></c></row>'
    assert refused(workbook(("Users", sheet(rows)))).code == "unreadable_file"


def test_a_sheet_wider_than_the_column_limit_is_refused():
    error = refused(workbook(("Users", sheet(row(1, [f"H{i}" for i in range(201)])))))
    assert (error.code, error.row) == ("too_many_columns", 1)
    assert "cell GS1" in error.message and "201 columns" in error.message
    assert read(workbook(("Users", sheet(row(1, ["A", "B", "C"])))), max_columns=3) == []


def test_a_value_far_right_is_refused_but_formatting_there_is_not():
    far = HEADER + '<row r="2"><c r="A2" t="inlineStr"><is><t>u2</t></is></c><c r="XFD2"><v>1</v></c></row>'
    error = refused(workbook(("Users", sheet(far))))
    assert error.code == "too_many_columns" and "XFD2" in error.message and "16,384" in error.message
    styled = HEADER + '<row r="2"><c r="A2" t="inlineStr"><is><t>u2</t></is></c><c r="XFD2" s="0"/></row>'
    assert read(workbook(("Users", sheet(styled)))) == [(2, {"Username": "u2", "Email": ""})]
    past = HEADER + '<row r="2"><c r="XFE2"><v>1</v></c></row>'
    assert refused(workbook(("Users", sheet(past)))).code == "unreadable_file"


def test_a_formula_without_a_saved_value_names_the_cell():
    rows = (
        HEADER
        + '<row r="2"><c r="A2" t="inlineStr"><is><t>u2</t></is></c><c r="B2"><f>A2&amp;"@x.co"</f></c></row>'
    )
    error = refused(workbook(("Users", sheet(rows))))
    assert (error.code, error.row) == ("unsaved_formula", 2)
    assert error.message.startswith("Cell B2 holds a formula without a saved value: open and save the file")
    saved = rows.replace('<c r="B2">', '<c r="B2" t="str">').replace("</f>", "</f><v>u2@x.co</v>")
    assert read(workbook(("Users", sheet(saved)))) == [(2, {"Username": "u2", "Email": "u2@x.co"})]


def test_a_cell_over_128_kb_is_refused_naming_it():
    error = refused(workbook(("Users", users_sheet(("u2", "x" * 140_000)))))
    assert (error.code, error.row) == ("cell_too_long", 2) and "Cell B2" in error.message


def test_an_empty_first_sheet_lists_the_sheets_and_asks_for_sheet():
    data = workbook(("Notes", sheet("")), ("Users", users_sheet(("u2", "u2@example.com"))))
    error = refused(data)
    assert (error.code, error.details) == ("empty_file", {"sheets": ["Notes", "Users"]})
    assert "'Notes', 'Users'" in error.message and "sheet field" in error.message
    found = inspect_table(data, "u.xlsx", **LIMITS, sheet="Users")
    assert (found.sheet, found.sheets, found.row_count) == ("Users", ["Notes", "Users"], 1)


def test_sheet_names_in_messages_show_invisible_characters():
    data = workbook(("Users\u200b", users_sheet(("u2", "u2@example.com"))))
    error = refused(data, sheet="Users")
    assert "'UsersU+200B'" in error.message and error.details["sheets"] == ["Users\u200b"]


def test_a_csv_has_no_sheets():
    found = inspect_table(b"Username\nu2\n", "u.csv", **LIMITS, sheet="Users")
    assert (found.sheet, found.sheets) == (None, [])
