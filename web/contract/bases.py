"""The building blocks of the API's models: text a database can hold, ids, query integers, base models."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from shared.accounts.auth_types import CONCRETE
from shared.models import AUTH_TYPES, MAX_ID

MAX_PAGE = 2**31  # page * per_page stays far inside 64 bits
# Text that reaches the database: PostgreSQL refuses NUL in strings (lone surrogates pydantic refuses itself).
NO_NUL = r"^[^\x00]*$"
_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")

Text = Annotated[str, StringConstraints(pattern=NO_NUL)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=NO_NUL)]
HexId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$"), Field(description="32 hex digits")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0)]


def _whole_number(value: Any) -> Any:
    """Query integers: ASCII digits only (`int()` also takes '³', ' 7', '1_000' and '+7')."""
    if isinstance(value, str) and not _WHOLE_NUMBER.fullmatch(value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


QueryInt = Annotated[int, BeforeValidator(_whole_number)]


def _open_object(schema: dict[str, Any]) -> None:
    schema.pop("additionalProperties", None)


class Request(BaseModel):
    """A JSON request body: exact JSON types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class Query(BaseModel):
    """Query parameters: text read into the declared types."""

    model_config = ConfigDict(extra="ignore")


class Answer(BaseModel):
    """A JSON answer: every field declared (checked in tests); open to new fields in the document."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_open_object)


AuthTypeName = Literal[AUTH_TYPES]  # type: ignore[valid-type]
ConcreteAuthType = Literal[tuple(k.value for k in CONCRETE)]  # type: ignore[valid-type]  (what applies at login)


class Strict(BaseModel):
    """A shape whose unknown keys are refused (the mapping parser refuses them)."""

    model_config = ConfigDict(extra="forbid")
