"""The Users table: its users (fields from the registry), temporary passwords of a reset."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, create_model

from shared.mapping.fields import FIELDS
from shared.mapping.fields import Field as RegistryField
from shared.models import SIP_MODES, User
from web.contract.bases import NO_NUL, Answer, AuthTypeName, ConcreteAuthType, Count, HexId, Id
from web.contract.schemas.common import PageQuery


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
    invitation=(
        Literal["pending", "sent", "failed", "accepted", "expired"] | None,
        Field(
            default=None, description="the user's invitation (API.md, Credentials by invitation); null: none"
        ),
    ),
)
UserAnswer.__doc__ = "A user of the Users table (never its password)."


class UserPage(Answer):
    items: list[UserAnswer]  # type: ignore[valid-type]
    total: Count
    page: int
    per_page: int


class TemporaryPassword(Answer):
    temporary_password: str = Field(description="shown once; the user must change it at the next login")
