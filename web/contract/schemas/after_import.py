"""API.md "Beyond the help page": an import's rows, checking a fix, retrying failed rows."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from shared.models import RowStatus
from web.contract.bases import Answer, Count, Id, Request, Text
from web.contract.schemas.common import PageQuery

_ROW_STATUS = "|".join(s.value for s in RowStatus)


def _statuses(value: Any) -> Any:
    """`error`, or several separated by commas (`error,duplicate`); empty: every row."""
    if isinstance(value, str):
        return value.split(",") if value else None
    return value


class RowsQuery(PageQuery):
    status: Annotated[
        list[RowStatus] | None,
        BeforeValidator(_statuses),
        WithJsonSchema({"type": "string", "pattern": f"^(({_ROW_STATUS})(,({_ROW_STATUS}))*)?$"}),
    ] = Field(default=None, description="only rows in these states, comma separated: error,duplicate")


class RowProblem(Answer):
    field: str | None = Field(description="the mapping field (or sip.device, sip.uri); null: the row")
    column: str | None = Field(description="the file column the field is read from; null: none")
    message: str


class ImportRow(Answer):
    row: Id = Field(description="the row number in the file (the header is row 1)")
    status: RowStatus
    values: dict[str, str] = Field(description="the row's original cells by column")
    messages: list[str]
    problems: list[RowProblem] = Field(description="the messages, each with the field and column it is about")


class RowPage(Answer):
    items: list[ImportRow] = Field(description="in row order")
    total: Count
    page: int
    per_page: int
    columns: list[str] = Field(
        description="the columns the mapping reads, in file order: what a fix may change"
    )


Cells = Annotated[
    dict[Text, Text],
    Field(description="corrected cells by column of the file; the other cells keep the file's values"),
]


class RowCheck(Request):
    values: Cells = Field(default_factory=dict)


class RowCheckAnswer(Answer):
    row: Id
    valid: bool = Field(description="no problem: the row would be created")
    problems: list[RowProblem]


class RowFix(Request):
    row: Id = Field(description="an error or duplicate row of the import")
    values: Cells = Field(default_factory=dict)


class Retry(Request):
    rows: list[RowFix] | None = Field(
        default=None, description="the corrections; rows not listed go in unchanged (no body: every one)"
    )
