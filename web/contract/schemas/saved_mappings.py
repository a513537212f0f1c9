"""API.md "Beyond the help page": saved mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field, StringConstraints, ValidationError

from shared.errors import InvalidMapping
from shared.mapping.saved_mappings import NAME_MAX
from web.contract.bases import Answer, Id, Request
from web.contract.mapping_model import CheckedMapping, Mapping
from web.contract.routes import field_path


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
    """A mapping shared.mapping.parser accepted, in the shape the document describes; else 422
    invalid_mapping."""
    try:
        Mapping.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMapping(
            [
                {"field": field_path(p["loc"]), "message": p["msg"]}
                for p in exc.errors(include_url=False, include_input=False)
            ]
        ) from None
