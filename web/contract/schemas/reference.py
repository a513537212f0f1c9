"""API.md "Reference data": roles, desks, skill groups, PBX domains."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from shared.accounts.auth_types import CONCRETE, AuthType
from web.contract.bases import Answer, ConcreteAuthType, Id, Request


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
