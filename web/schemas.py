"""The JSON API's requests and answers, declared once: they validate requests and write the OpenAPI document.

Requests are checked strictly (a JSON `"true"` is not a boolean); query parameters arrive as
text and are read as such. Answers are open in the published document (a client must accept
new fields), while the test suite checks every answer against its model with unknown fields
forbidden, so a field the code adds without declaring it here fails a test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from shared.auth_types import CONCRETE, AuthType
from shared.errors import InvalidMapping
from shared.fields import FIELDS
from shared.fields import Field as RegistryField
from shared.models import SIP_MODES, JobStatus, RowStatus, User
from shared.saved_mappings import NAME_MAX
from shared.users import MAX_PER_PAGE
from web.contract import field_path
from web.mapping_schema import Mapping, SuggestedMapping
from web.schema_types import (
    MAX_PAGE,
    NO_NUL,
    Answer,
    AuthTypeName,
    ConcreteAuthType,
    Count,
    HexId,
    Id,
    Name,
    Query,
    QueryInt,
    Request,
    Text,
)

# --- errors and health ----------------------------------------------------------------------------


class ErrorBody(Answer):
    code: str = Field(pattern=r"^[a-z0-9_]+$", description="stable snake_case code")
    message: str = Field(description="what is wrong and how to fix it")
    details: Any = Field(default=None, description="the problems one by one, where there are several")


class Error(Answer):
    """Every 4xx and 5xx answer (API.md)."""

    error: ErrorBody


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    """200 when the database, Redis and a worker answer; else 503 naming what is missing."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description='"ok" or "error: <kind>" for database, redis, workers')
    workers: list[str]
    missing: list[str] | None = None
    error: ErrorBody | None = None


class Document(Answer):
    """The OpenAPI document itself."""

    model_config = ConfigDict(extra="allow")
    openapi: str


# --- authentication -------------------------------------------------------------------------------


class TokenRequest(Request):
    tenant: Name = Field(description="the workspace, e.g. demo")
    username: Name
    password: Annotated[str, StringConstraints(min_length=1)]
    code: Text | None = Field(
        default=None, description="one-time code (authenticator, email) or a recovery code, when asked"
    )
    new_password: str | None = Field(
        default=None, description="when asked (password_change_required): at least 12 characters"
    )


class Token(Answer):
    token: str
    expires_at: datetime
    recovery_codes: list[str] | None = Field(
        default=None, description="only when this call finished an authenticator's enrolment; shown once"
    )


# --- reference data -------------------------------------------------------------------------------


class Named(Answer):
    id: Id
    name: str


class Desk(Named):
    pass


class SkillGroup(Named):
    pass


class Role(Named):
    auth_default: ConcreteAuthType | None = Field(description="the role's own default; null: the tenant's")
    permissions: list[str]


class PbxDomain(Named):
    domain: str


class RoleUpdate(Request):
    error_codes: ClassVar[dict[str, str]] = {"auth_default": "invalid_auth_default"}

    auth_default: Literal[tuple(k.value for k in (AuthType.DEFAULT, *CONCRETE))] | None = Field(  # type: ignore[valid-type]
        description="default or null: the tenant's default"
    )


# --- uploads and imports --------------------------------------------------------------------------


class UploadForm(BaseModel):
    """multipart/form-data with the file in the part named `file`."""

    file: bytes = Field(description="the CSV or XLSX file")
    sheet: str = Field(default="", description="the workbook's sheet to read; empty: the first visible")


class SuggestionProblem(Answer):
    field: str = Field(description="the mapping field left out")
    message: str


class UploadAnswer(Answer):
    upload_id: HexId
    filename: str
    format: Literal["csv", "xlsx"]
    headers: list[str]
    row_count: Count
    preview: list[dict[str, str]] = Field(description="the first rows, by header")
    suggested_mapping: SuggestedMapping  # type: ignore[valid-type]
    suggested_from: str | None = Field(
        default=None, description="the saved mapping the suggestion comes from; absent: from the headers"
    )
    suggestion_problems: list[SuggestionProblem] | None = Field(
        default=None, description="what the saved mapping chose that is gone since (left out)"
    )
    sheet: str | None = Field(description="the workbook sheet read; null for CSV")
    sheets: list[str] = Field(description="the workbook's sheets in order; [] for CSV")
    created_at: datetime


def _checked_by_parser(value: Any) -> Any:
    return value  # shared.mapping checks it against the file and answers 422 invalid_mapping


# Documented as the Mapping; shared.mapping checks it (against the file's or its own columns).
CheckedMapping = Annotated[
    Mapping,  # type: ignore[valid-type]
    PlainValidator(_checked_by_parser, json_schema_input_type=Mapping),
]


class StartImport(Request):
    upload_id: HexId
    mapping: CheckedMapping
    dry_run: bool = Field(default=False, description="check every row, create nothing")


class ImportLinks(Answer):
    self: str
    errors: str | None = Field(default=None, description="once there is a duplicate or an error")
    success: str | None = Field(default=None, description="once users were created, until the passwords go")
    rows: str | None = Field(default=None, description="its rows, values and messages, once it ended")


class ImportStatus(Answer):
    id: HexId
    status: JobStatus
    dry_run: bool
    total: Count
    processed: Count = Field(description="created + duplicates + errors")
    created: Count = Field(description="of a dry run: the rows that would be created")
    duplicates: Count
    errors: Count
    percent: Annotated[int, Field(ge=0, le=100)]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="why a failed job could not process its file")
    filename: str
    upload_id: HexId
    created_by: str | None
    cancel_requested: bool
    passwords_destroyed: bool
    undone: Count = Field(description="users an undo removed")
    undone_at: datetime | None = Field(description="when the undo removed the last user")
    retry_of: HexId | None = Field(description="the import whose failed rows this one retries")
    retried_by: list[HexId] = Field(description="the retries of this import's failed rows, oldest first")
    regenerating: bool = Field(description="new temporary passwords are being made")
    regenerated: Count = Field(description="users holding the newest regenerated passwords")
    password_generation: Count = Field(description="how many times the passwords were regenerated")
    passwords_regenerated_at: datetime | None
    links: ImportLinks


class ImportList(Answer):
    items: list[ImportStatus] = Field(description="newest first")


# --- after an import: undo, regenerated passwords, failed rows, retries ----------------------------


class PageQuery(Query):
    page: QueryInt = Field(default=1, ge=1, le=MAX_PAGE, description="the page, from 1")
    per_page: QueryInt = Field(default=50, ge=1, le=MAX_PER_PAGE, description="items a page")


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


# --- users ----------------------------------------------------------------------------------------


class UsersQuery(PageQuery):
    q: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] | None = Field(
        default=None, description="text in any searchable field, case-insensitive"
    )
    import_id: HexId | None = Field(default=None, description="only the users this import created")


def _attribute_type(f: RegistryField) -> Any:
    """A registry field's JSON type, as User stores it."""
    if f.many:
        return list[Id]
    column = User.__table__.c[f.attribute]
    kind = Id if f.entity is not None else column.type.python_type
    return kind | None if column.nullable else kind


UserAnswer = create_model(
    "User",
    __base__=Answer,
    id=(Id, ...),
    **{f.attribute: (_attribute_type(f), Field(description=f.label)) for f in FIELDS},
    sip_mode=(Literal[SIP_MODES], ...),  # type: ignore[valid-type]
    pbx_domain_id=(Id | None, ...),
    sip_device=(str | None, ...),
    sip_uri=(str | None, ...),
    auth_type=(AuthTypeName, ...),
    effective_auth_type=(
        ConcreteAuthType,
        Field(description="the user's own, else its role's, else the tenant's"),
    ),
    second_factor_enrolled=(bool, ...),
    locked=(bool, ...),
    failed_logins=(Count, ...),
    last_login_at=(datetime | None, ...),
    allowed_networks=(list[str] | None, ...),
    session_timeout_minutes=(int | None, ...),
    lock_after_failed_logins=(int | None, ...),
    must_change_password=(bool, ...),
    created_at=(datetime, ...),
    import_id=(HexId | None, Field(description="the import that created the user")),
)
UserAnswer.__doc__ = "A user of the Users table (never its password)."


class UserPage(Answer):
    items: list[UserAnswer]  # type: ignore[valid-type]
    total: Count
    page: int
    per_page: int


class TemporaryPassword(Answer):
    temporary_password: str = Field(description="shown once; the user must change it at the next login")


# --- saved mappings -------------------------------------------------------------------------------


class SaveMapping(Request):
    error_codes: ClassVar[dict[str, str]] = {"name": "invalid_name"}

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=r"^[^\x00]*\S[^\x00]*$")
    ] = Field(description="saving a name again (in any case) replaces that mapping")
    mapping: CheckedMapping = Field(description="checked like an import's, against the columns it names")


class SavedMapping(Answer):
    id: Id
    name: str
    mapping: Mapping  # type: ignore[valid-type]
    columns: list[str] = Field(description="the columns it reads: offered to an upload that has them all")
    created_by: str | None
    created_at: datetime
    updated_at: datetime = Field(description="when it was last saved; the newest that fits is offered")


class SavedMappingList(Answer):
    items: list[SavedMapping] = Field(description="newest saved first")


def documented_mapping(raw: Any) -> None:
    """A mapping shared.mapping accepted, in the shape the document describes, or 422 invalid_mapping."""
    try:
        Mapping.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMapping(
            [
                {"field": field_path(p["loc"]), "message": p["msg"]}
                for p in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def list_of(item: type[BaseModel], name: str) -> type[BaseModel]:
    """An answer `{"items": [...]}` of one kind of item."""
    return create_model(name, __base__=Answer, items=(list[item], ...))  # type: ignore[valid-type]
