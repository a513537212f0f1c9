"""The dialer's reference data (roles, desks, skill groups, PBX domains), scoped to a tenant."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.accounts.auth_types import CONCRETE, AuthType, parse
from shared.audit import record
from shared.errors import DomainError, NotFound
from shared.models import REFERENCE_LABELS, Desk, PbxDomain, Role, SkillGroup

Entity = TypeVar("Entity", Role, Desk, SkillGroup, PbxDomain)

KINDS: dict[str, type] = {
    "roles": Role,
    "desks": Desk,
    "skill-groups": SkillGroup,
    "pbx-domains": PbxDomain,
}


def list_entities(session: Session, tenant_id: int, model: type[Entity]) -> list[Entity]:
    """All entities of a kind for the tenant, by id."""
    return list(session.scalars(select(model).where(model.tenant_id == tenant_id).order_by(model.id)))


def get_entity(session: Session, tenant_id: int, model: type[Entity], entity_id: int) -> Entity:
    """One entity of the tenant; another tenant's answers NotFound like a missing one."""
    entity = session.get(model, entity_id)
    if entity is None or entity.tenant_id != tenant_id:
        raise NotFound(f"{REFERENCE_LABELS[model]} {entity_id}")
    return entity


def set_role_auth_default(
    session: Session, tenant_id: int, actor_id: int | None, role_id: int, value: object
) -> Role:
    """Set the role's authentication default (`default` or None: the tenant's)."""
    role = get_entity(session, tenant_id, Role, role_id)
    kind = parse(value if value is not None else AuthType.DEFAULT.value, (AuthType.DEFAULT, *CONCRETE))
    if kind is None:
        allowed = ", ".join(k.value for k in (AuthType.DEFAULT, *CONCRETE))
        raise DomainError("invalid_auth_default", f"auth_default must be one of {allowed} (or null).")
    role.auth_default = None if kind is AuthType.DEFAULT else kind.value
    record(session, tenant_id, actor_id, "role.auth_default_set", str(role.id),
           {"role": role.name, "auth_default": kind.value})  # fmt: skip
    return role


def as_dict(entity: Role | Desk | SkillGroup | PbxDomain) -> dict[str, Any]:
    """The JSON shape of a reference entity."""
    data: dict[str, Any] = {"id": entity.id, "name": entity.name}
    if isinstance(entity, Role):
        data["auth_default"] = entity.auth_default
        data["permissions"] = list(entity.permissions or [])
    if isinstance(entity, PbxDomain):
        data["domain"] = entity.domain
    return data
