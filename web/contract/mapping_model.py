"""The mapping's models (API.md "Mapping"), generated from the field registry.

They document the mapping; shared.mapping.parser stays the authority on what a mapping means (it
checks columns and IDs against the file and the tenant and lists every problem, 422).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StringConstraints,
    Tag,
    create_model,
)

from shared.mapping.fields import FIELDS, Source
from shared.mapping.fields import Field as RegistryField
from shared.mapping.parser import HINTS_KEY, LOCK_AFTER_MAX, SESSION_TIMEOUT_MAX
from web.contract.bases import NO_NUL, AuthTypeName, Id, Strict, Text


class ColumnSource(Strict):
    """One value a row, from this column of the file."""

    column: Annotated[str, StringConstraints(min_length=1, pattern=NO_NUL)] = Field(
        description="a header of the file"
    )


class GenerateSource(Strict):
    """Made by the import (the lowest free extensions, in row order)."""

    generate: Literal[True]


class IdSource(Strict):
    """One value for all rows: the ID of the tenant's entity."""

    value: Id


class IdsSource(Strict):
    """One value for all rows: IDs of the tenant's entities."""

    value: list[Id]


def _form(spec: Any) -> str | None:
    """Which source form a mapping entry is in (its one key); picks the model that checks it."""
    if isinstance(spec, dict):
        for form in (Source.GENERATE, Source.COLUMN, Source.VALUE):
            if form.value in spec:
                return form.value
    return None


def _source_type(f: RegistryField) -> Any:
    forms = {
        Source.COLUMN: ColumnSource,
        Source.VALUE: IdsSource if f.many else IdSource,
        Source.GENERATE: GenerateSource,
    }
    if len(f.sources) == 1:
        return forms[f.sources[0]]
    choices = tuple(Annotated[forms[s], Tag(s.value)] for s in f.sources)
    # A callable discriminator picks the form by its key, so the document says oneOf.
    return Annotated[Union[choices], Discriminator(_form)]  # noqa: UP007  (built at run time)


class SipWebrtc(Strict):
    mode: Literal["webrtc"]


class SipClassicPbx(Strict):
    mode: Literal["classic_pbx"]
    domain_id: Id = Field(description="a PBX domain of the tenant")
    device: ColumnSource = Field(description="the column with each user's PBX device number")


class SipCustomUri(Strict):
    mode: Literal["custom_uri"]
    uri: ColumnSource = Field(description="the column with each user's SIP URI")


class SipBuiltinPbx(Strict):
    mode: Literal["builtin_pbx"]


class SipClassicPbxSuggested(SipClassicPbx):
    """In a suggestion from a saved mapping, the PBX domain is left out when it was deleted since."""

    domain_id: Id | None = Field(default=None, description="a PBX domain of the tenant")


SIP_DESCRIPTION = "SIP settings of every user; default webrtc"
Sip = Annotated[
    SipWebrtc | SipClassicPbx | SipCustomUri | SipBuiltinPbx,
    Field(discriminator="mode", description=SIP_DESCRIPTION),
]
SuggestedSip = Annotated[
    SipWebrtc | SipClassicPbxSuggested | SipCustomUri | SipBuiltinPbx,
    Field(discriminator="mode", description=SIP_DESCRIPTION),
]


class Security(BaseModel):
    """Advanced security settings of every user of the file."""

    allowed_networks: list[Text] | None = Field(default=None, description="CIDR networks, IPv4 or IPv6")
    session_timeout_minutes: Annotated[int, Field(ge=1, le=SESSION_TIMEOUT_MAX)] | None = None
    force_password_change: bool = True
    lock_after_failed_logins: Annotated[int, Field(ge=1, le=LOCK_AFTER_MAX)] | None = None


class Hints(BaseModel):
    """Columns that look like SIP settings: suggestions only (sent back in a mapping, they are ignored)."""

    sip_uri: str | None = None
    device: str | None = None


def _describe(f: RegistryField) -> str:
    forms = ", ".join(s.value for s in f.sources)
    return f"{f.label} ({forms})" + (f": {f.hint}" if f.hint else "")


def mapping_model(
    name: str, *, partial: bool, registry: tuple[RegistryField, ...] = FIELDS
) -> type[BaseModel]:
    """The mapping's model: a field for each registry entry (required ones required unless partial)."""
    fields: dict[str, Any] = {}
    for f in registry:
        kind = _source_type(f)
        if f.required and not partial:
            fields[f.key] = (kind, Field(description=_describe(f)))
        else:
            fields[f.key] = (kind | None, Field(default=None, description=_describe(f)))
    fields |= {
        "sip": ((SuggestedSip if partial else Sip) | None, None),
        "auth_type": (
            AuthTypeName,
            Field(default="default", description="authentication type of every user"),
        ),
        "security": (Security | None, None),
        "digits_only_passwords": (
            bool,
            Field(default=False, description="temporary passwords of digits only"),
        ),
        "credentials": (
            Literal["temporary_password", "invitation"],
            Field(
                default="temporary_password",
                description="how the new users get their first password: a temporary one in success.csv,"
                " or an emailed invitation to choose their own (API.md, Credentials by invitation)",
            ),
        ),
        HINTS_KEY: (Hints | None, None),
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


Mapping = mapping_model("Mapping", partial=False)
Mapping.__doc__ = "Where each field's value comes from (API.md). Unknown fields are refused."
SuggestedMapping = mapping_model("SuggestedMapping", partial=True)
SuggestedMapping.__doc__ = "A mapping guessed from the headers; the fields it could not guess are left out."


def _checked_by_parser(value: Any) -> Any:
    return value  # shared.mapping.parser checks it against the file and answers 422 invalid_mapping


# Documented as the Mapping; shared.mapping.parser checks it (against the file's or its own columns).
CheckedMapping = Annotated[
    Mapping,  # type: ignore[valid-type]
    PlainValidator(_checked_by_parser, json_schema_input_type=Mapping),
]
