"""CSV files that go wrong in the ways people's files do: quotes, encodings, width, huge cells."""

from __future__ import annotations

import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table, open_table

LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}


def refused(data: bytes, name: str = "users.csv", **kw) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        inspect_table(data, name, **{**LIMITS, **kw})
    return caught.value


def users(count: int) -> list[bytes]:
    """A header and rows 2..count of three columns, as lines."""
    return [b"Username,Email,Ext"] + [b"u%d,u%d@example.com,10%02d" % (i, i, i) for i in range(2, count + 1)]


def test_a_quote_left_open_in_row_4_of_9_is_refused_naming_the_row():
    lines = users(9)
    lines[3] = b'u4,"u4@example.com,1004'
    error = refused(b"\n".join(lines) + b"\n")
    assert (error.code, error.row) == ("unreadable_file", 4)
    assert "cell B4" in error.message and "lines 4 to 9" in error.message


def test_a_quote_closed_rows_too_late_is_refused_too():
    lines = users(9)
    lines[3], lines[6] = b'u4,"u4@example.com,1004', b'u7,"u7"@example.com,1007'
    error = refused(b"\n".join(lines) + b"\n")
    assert (error.code, error.row) == ("unreadable_file", 4)
    assert "lines 4 to 7" in error.message


def test_a_quote_open_at_the_last_line_without_a_line_break_is_refused():
    assert refused(b'Username,Email\r\nu2,u2@example.com\r\nu3,"u3@example.com').row == 3


def test_legitimate_quoted_cells_over_several_lines_still_read():
    data = (
        b'Username,Email,Address\r\nu2,u2@example.com,"Suite 5,\r\n1 Main St, Springfield, IL"\r\n'
        b'u3,u3@example.com,"He said ""hi""\nthen left"\r\n'
    )
    found = inspect_table(data, "users.csv", **LIMITS)
    assert found.row_count == 2 and found.preview[1]["Address"] == 'He said "hi"\nthen left'


def test_a_runaway_quote_past_the_cell_limit_names_the_quote_not_the_limit():
    error = refused(b'Username,Note\njdoe,ok\nasmith,"never closed\n' + b"x" * 200_000)
    assert (error.code, error.row) == ("unreadable_file", 3)
    assert "quote" in error.message and "field larger" not in error.message


def test_a_cell_over_128_kb_gets_our_message_with_row_and_limit():
    error = refused(b"Username,Note\njdoe,ok\nasmith," + b"x" * 140_000 + b"\n")
    assert (error.code, error.row) == ("cell_too_long", 3)
    assert "row 3" in error.message and "131,072 characters (128 KB)" in error.message
    assert "field larger than field limit" not in error.message


def test_a_header_of_631749_columns_is_refused_at_once():
    data = b",".join(b"c%d" % i for i in range(631_749)) + b"\nx\n"
    assert len(data) > 4_800_000
    error = refused(data)
    assert (error.code, error.row) == ("too_many_columns", 1)
    assert "631,749 columns" in error.message and "at most 200" in error.message


def test_the_column_limit_is_a_setting_and_counts_filled_cells_only():
    assert refused(b"A,B,C\n1,2,3\n", max_columns=2).code == "too_many_columns"
    # Exports padded with empty cells far to the right are fine.
    padded = b"Username,Email" + b"," * 400 + b"\nu2,u2@example.com" + b"," * 400 + b"\n"
    assert inspect_table(padded, "users.csv", **LIMITS).headers == ["Username", "Email"]
    error = refused(b"Username\nu2" + b",x" * 250 + b"\n")
    assert (error.code, error.row) == ("too_many_columns", 2)


UTF8, ANSI = "utf-8", "cp1252"


@pytest.mark.parametrize(
    ("lines", "odd", "main"),
    [
        ([("mm,Müller", UTF8), ("jj,José", UTF8), ("kk,José", ANSI)], "Windows-1252", "UTF-8"),
        ([("kk,José", ANSI), ("ll,Señor", ANSI), ("mm,Müller", UTF8)], "UTF-8", "Windows-1252"),
    ],
)
def test_lines_in_two_encodings_are_refused_naming_the_odd_row(lines, odd, main):
    data = b"Username,Name\r\n" + b"".join(text.encode(encoding) + b"\r\n" for text, encoding in lines)
    error = refused(data)
    assert (error.code, error.row) == ("mixed_encoding", 4)
    assert f"mostly {main}" in error.message and f"row 4 is {odd}" in error.message
    assert "Ã" not in error.message  # José is never shown mangled


def test_a_utf8_marked_file_with_a_windows_1252_line_is_mixed_too():
    error = refused(b"\xef\xbb\xbfUsername,Name\r\nkk,Jos\xe9\r\n")
    assert (error.code, error.row) == ("mixed_encoding", 2) and "'kk,José'" in error.message


def test_mixed_encodings_count_rows_not_lines():
    data = 'Username,Note\r\nu2,"two\r\nlines é"\r\nu3,José\r\n'.encode() + "u4,José\r\n".encode("cp1252")
    assert refused(data).row == 4


def test_a_windows_1252_file_still_reads_and_undefined_bytes_name_the_line():
    assert open_table("Username,Name\nkk,José\n".encode("cp1252"), "u.csv", **LIMITS).encoding == "cp1252"
    error = refused(b"Username,Name\nkk,Jos\x81\n")
    assert error.code == "unreadable_file" and "on line 2" in error.message


def test_json_is_recognised_by_its_content():
    assert refused(b'  [{"username": "jdoe"}]', "users.csv").code == "unsupported_format"
    assert refused(b'{"users": []}', "users.txt").code == "unsupported_format"


def test_empty_rows_below_the_users_cost_nothing_and_a_file_of_mostly_blank_lines_is_refused():
    data = b"Username,Email\r\nusr2,usr2@example.com\r\n" + b",\r\n" * 1_000_000
    assert inspect_table(data, "users.csv", **LIMITS).row_count == 1
    error = refused(b"Username,Email\r\n" + b"\r\n" * 60_000 + b"usr2,usr2@example.com\r\n")
    assert error.code == "too_many_rows" and "60,002 lines" in error.message
