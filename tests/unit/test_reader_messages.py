"""What refusals say: sizes exact enough to differ, values cut short, invisible characters named."""

from __future__ import annotations

import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table
from shared.files.uploads import clean_filename
from shared.text import size_text

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "limit", "text"),
    [
        (5 * MB + 1, 5 * MB, "5.000001 MB"),
        (5 * MB + 11, 5 * MB, "5.00001 MB"),
        (int(5.5 * MB), 5 * MB, "5.5 MB"),
        (6 * MB, 5 * MB, "6 MB"),
        (3810 * MB, 5 * MB, "3.72 GB"),
        (1234, None, "1.21 KB"),
        (17, None, "17 bytes"),
    ],
)
def test_sizes_never_read_like_the_limit_nor_in_e_notation(size, limit, text):
    assert size_text(size, limit) == text
    if limit:
        assert size_text(size, limit) != size_text(limit)


def test_a_file_just_over_the_limit_says_by_how_much():
    with pytest.raises(FileRejected) as caught:
        inspect_table(b"x" * (5 * MB + 1), "users.csv", max_rows=500, max_bytes=5 * MB)
    assert caught.value.message.startswith("The file is 5.000001 MB; the limit is 5 MB.")


def test_a_header_with_an_invisible_character_is_shown_with_it():
    with pytest.raises(FileRejected) as caught:
        inspect_table("Email,Username\u200b,username\u200b\r\n".encode(), "u.csv", max_rows=5, max_bytes=MB)
    assert "'usernameU+200B' appears twice" in caught.value.message


def test_a_huge_cell_echoed_in_a_message_is_cut():
    with pytest.raises(FileRejected) as caught:
        inspect_table(b"Username," + b"7" * 100_000 + b"\r\nx,y\r\n", "u.csv", max_rows=5, max_bytes=MB)
    assert caught.value.code == "no_header" and "7" * 59 + "…'" in caught.value.message
    assert len(caught.value.message) < 400


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("users\x00.csv", "users.csv"),
        ("us\u202eers.csv", "users.csv"),  # a right-to-left override disguises the extension
        ("a\r\nb\t.csv", "ab.csv"),
        ("C:\\temp\\users.csv", "users.csv"),
        ("../../etc/users.csv", "users.csv"),
        ("\x00\x01", "upload"),
        (None, "upload"),
    ],
)
def test_file_names_lose_folders_and_control_characters(name, kept):
    assert clean_filename(name) == kept
