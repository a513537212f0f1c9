"""The reader against real files written by other tools (../shared/corpus, see its SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import FileRejected
from shared.files.reader import inspect_table, open_table

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
LIMITS = {"max_rows": 500, "max_bytes": 5 * 1024 * 1024}

pytestmark = [
    pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not beside the project"),
    # shared/files/reader.py silences these at import; pytest resets warning filters around each test.
    pytest.mark.filterwarnings("ignore::UserWarning:openpyxl"),
]

# Every corpus file that is refused, and why; all others must read.
REFUSED = {
    "csv-edge/papaparse__duplicate-headers.csv": "duplicate_header",  # "12".."38" repeated five times
    "csv-edge/papaparse__sjis-sample.csv": "unreadable_file",  # Shift_JIS: not UTF-8/16 nor cp1252
    "user-import-templates/broadworks__user.create.csv": "duplicate_header",  # portNumber twice
    "user-import-templates/auth0__basic-example.json": "unsupported_format",
    "user-import-templates/auth0__custom-password-hash-example.json": "unsupported_format",
    "xlsx/calamine__date.xlsx": "no_header",  # dates from row 1
    "xlsx/calamine__date_1904.xlsx": "no_header",
    "xlsx/calamine__issues.xlsx": "no_header",  # first sheet is one column of values
    "xlsx/calamine__no-header.xlsx": "no_header",
    "xlsx/calamine__empty_sheet.xlsx": "empty_file",
    "xlsx/roo__emptysheets.xlsx": "empty_file",
    "xlsx/csvkit__sheets.xlsx": "empty_file",  # first sheet empty, data on the second
    "xlsx/roo__hidden_sheets.xlsx": "empty_file",  # the visible sheet has one cell only
    "xlsx/calamine__merge_cells.xlsx": "blank_header",  # B1 is covered by a merge
    "xlsx/roo__merged_ranges.xlsx": "blank_header",
    "xlsx/fastexcel__fixture-single-sheet-with-types.xlsx": "blank_header",  # A1 empty
    "xlsx/fastexcel__fixture-single-sheet-duplicated-columns.xlsx": "duplicate_header",
    "xlsx/calamine__strict_iso_paths.xlsx": "unreadable_file",  # Strict OOXML
    "xlsx/csvkit__ne_1033_data.xlsx": "too_many_rows",  # 1,036 rows
    "xlsx/roo__number_with_zero_prefix.xlsx": "no_header",  # a grid of numbers
}
FILES = sorted(
    str(p.relative_to(CORPUS))
    for p in CORPUS.rglob("*")
    if p.suffix in {".csv", ".xlsx"} or p.parent.name == "user-import-templates"
)


def read(name: str, **kw):
    return open_table((CORPUS / name).read_bytes(), Path(name).name, **{**LIMITS, **kw})


def values(name: str, **kw) -> list[dict[str, str]]:
    return [row.values for row in read(name, **kw).rows()]


@pytest.mark.parametrize("name", FILES)
def test_every_file_reads_or_is_refused_with_its_code(name):
    try:
        found = inspect_table((CORPUS / name).read_bytes(), Path(name).name, **LIMITS)
    except FileRejected as error:
        assert error.code == REFUSED.get(name), error.message
        assert error.message.endswith(".")
    else:
        assert name not in REFUSED and found.row_count > 0 and found.headers


SPECTRUM = sorted(p.stem for p in (CORPUS / "csv-spectrum" / "csvs").glob("*.csv")) if CORPUS.is_dir() else []
# Upstream's expectation is wrong (one object, another phone number); this is what the CSV holds.
LOCATION = [
    {
        "Contact Phone Number": "2095257564",
        "Location Coordinates": "37\ufffd36'37.8\"N 121\ufffd2'17.9\"W",
        "Cities": "Modesto",
        "Counties": "Stanislaus",
    }
]


@pytest.mark.parametrize("stem", SPECTRUM)
def test_csv_spectrum_reads_as_expected(stem):
    expected = json.loads((CORPUS / "csv-spectrum" / "json" / f"{stem}.json").read_text("utf-8"))
    assert values(f"csv-spectrum/csvs/{stem}.csv") == (
        LOCATION if stem == "location_coordinates" else expected
    )


def test_csv_edge_values_as_typed():
    assert values("csv-edge/csvkit__test_no_leading_zeroes.csv") == [{"a": "01", "b": "00.11", "c": "0.1"}]
    assert values("csv-edge/csvkit__test_locale.csv") == [{"a": "1,7", "b": "200.000.000", "c": ""}]
    bad = list(read("csv-edge/csvkit__bad.csv").rows())
    assert bad[0].extra == ("I'm too long!",) and bad[1].values == {
        "column_a": "",
        "column_b": "I'm too short!",
        "column_c": "",
    }
    assert values("csv-edge/csvkit__null_byte.csv") == [{"a": "", "b": "2", "c": "3"}]
    assert values("csv-edge/csvkit__mac_newlines.csv")[1]["a"] == "Once upon\ra time"
    assert read("csv-edge/csvkit__sniff_limit.csv").delimiter == ";"
    assert read("csv-edge/csvkit__test_skip_lines.csv").header_row == 4
    assert read("csv-edge/csvw__test051.csv").header_row == 3  # two "#" comment lines
    assert values("csv-edge/csvw__test003.csv")[0] == {"Surname": "Homer", "FamilyName": "Simpson"}
    assert read("csv-edge/csvkit__test_header_newline.csv").headers[1:] == ["b", "c"]


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("csv-edge/csvkit__test_utf16_big.csv", "utf-16"),
        ("csv-edge/csvkit__test_utf16_little.csv", "utf-16"),
        ("csv-edge/csvkit__test_utf8_bom.csv", "utf-8-sig"),
        ("csv-edge/csvw__test-utf16.csv", "utf-16-le"),
        ("csv-edge/csvw__test-utf16-bom.csv", "utf-16"),
        ("csv-edge/csvw__test-utf8-bom.csv", "utf-8-sig"),
        ("csv-edge/csvlint__invalid-byte-sequence.csv", "cp1252"),
        ("csv-spectrum/csvs/latin1.csv", "cp1252"),
    ],
)
def test_csv_encodings_are_detected(name, encoding):
    table = read(name)
    assert table.encoding == encoding
    text = " ".join(" ".join(r.values.values()) for r in table.rows()) + " ".join(table.headers)
    assert "\x00" not in text and "\ufffd" not in text
    assert any(word in text for word in ("ʤ", "Я могу", "Histórico", "©"))


def test_xlsx_numbers_and_dates_as_a_spreadsheet_shows_them():
    first = next(read("xlsx/csvkit__ne_1033_data.xlsx").rows()).values
    assert (first["fips"], first["nsn"], first["quantity"], first["ship_date"]) == (
        "31001",
        "1005-00-589-1271",
        "1",
        "2008-07-11",
    )
    rows = values("xlsx/csvkit__test.xlsx")
    assert rows[0] == {
        "text": "Chicago Reader",
        "date": "1971-01-01",
        "integer": "40",
        "boolean": "TRUE",
        "float": "1",
        "datetime": "1971-01-01T04:14:00",
        "empty_column": "",
    }
    assert [r["float"] for r in rows[:3]] == ["1", "1.27", "41800000.01"]
    assert values("xlsx/fastexcel__decimal-numbers.xlsx") == [{"Decimals": "28.14"}, {"Decimals": "29.02"}]
    assert values("xlsx/roo__zero-padded-number.xlsx") == [
        {"Table 1": n} for n in ("06083", "10083", "05010")
    ]
    nulls = values("xlsx/fastexcel__sheet-null-strings.xlsx")
    assert (
        nulls[2]["TIMESTAMPS_AND_NULLS"] == "2023-02-18T06:13:56.730"
        and nulls[0]["DATES_AND_NULLS"] == "NULL"
    )
    assert values("xlsx/fastexcel__fixture-multi-dtypes-columns.xlsx")[5]["Employee ID"] == "US00011"


def test_xlsx_dates_in_both_date_systems_read_the_same():
    for name in ("xlsx/calamine__date.xlsx", "xlsx/calamine__date_1904.xlsx"):
        with pytest.raises(FileRejected) as caught:
            read(name)
        assert "cell A1 holds '2021-01-01'" in caught.value.message
    with pytest.raises(FileRejected, match="cell A1 holds '1',"):
        read("xlsx/roo__number_with_zero_prefix.xlsx")  # <v>0001</v> is the number 1


def test_xlsx_layouts():
    table = read("xlsx/csvkit__test.xlsx")
    assert [r.extra for r in table.rows()][1] == ("Extra data beyond headers will be trimmed",)
    assert values("xlsx/csvkit__sheets.xlsx", sheet="data")[0]["integer"] == "40"
    assert values("xlsx/csvkit__sheets.xlsx", sheet="ʤ") == [{"a": "1", "b": "2", "c": "3"}]
    with pytest.raises(FileRejected, match="'data'"):
        read("xlsx/csvkit__sheets.xlsx")  # the empty first sheet names the others
    assert read("xlsx/calamine__header-row.xlsx").header_row == 9  # note in C3 skipped
    spaced = read("xlsx/fastexcel__sheet-and-table-with-whitespace.xlsx")
    assert spaced.header_row == 3 and [r.number for r in spaced.rows()] == [4, 5, 6, 7, 8, 9]
    assert values("xlsx/fastexcel__fixture-multi-sheet.xlsx", sheet="February")[2] == {
        "Month": "4",
        "Year": "2022",
    }


def test_inflated_sheet_dimension_yields_only_the_real_rows():
    table = read("xlsx/calamine__issue_174.xlsx")  # styled empty rows down to row 1,048,576
    rows = list(table.rows())
    assert table.headers[4] == "City" and len(table.headers) == 11
    assert [(r.number, r.values["Your Ref #"], r.values["Weight"]) for r in rows] == [(2, "123", "1.5")]


def test_user_import_templates_read():
    entra = read("user-import-templates/entra__bulk-create-users_example.csv")
    rows = list(entra.rows())
    assert entra.header_row == 2 and len(entra.headers) == 17 and len(rows) == 3
    assert rows[0].values["User name [userPrincipalName] Required"] == "alain@contoso.com"
    assert rows[0].values["Mobile phone [mobile]"] == ""  # 16 fields under 17 headers
    m365 = values("user-import-templates/m365__add-multiple-users_example.csv")
    assert m365[0]["User Name"] == "chris@contoso.com" and m365[0]["ZIP or Postal Code"] == "98052"
