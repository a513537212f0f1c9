"""Saved mappings: an admin names a mapping, and the next upload whose columns fit is mapped alike.

A saved mapping is checked like any mapping when it is saved (its columns are the headers it names).
When it is offered again, entities it chose in the dialer that were deleted since are left out and
named, so the mapping page says so and leaves that field unmapped.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.audit import record
from shared.errors import NotFound, Unprocessable
from shared.mapping.fields import FIELDS
from shared.mapping.parser import HINTS_KEY, check_mapping, named_columns
from shared.mapping.suggest import suggest_mapping
from shared.models import REFERENCE_LABELS, PbxDomain, SavedMapping, utcnow
from shared.timestamps import iso

NAME_MAX = 100


def as_dict(saved: SavedMapping) -> dict[str, Any]:
    """The JSON shape of a saved mapping."""
    return {
        "id": saved.id,
        "name": saved.name,
        "mapping": saved.mapping,
        "columns": list(saved.columns),
        "created_by": saved.created_by.username if saved.created_by else None,
        "created_at": iso(saved.created_at),
        "updated_at": iso(saved.updated_at),
    }


def list_mappings(session: Session, tenant_id: int) -> list[SavedMapping]:
    """The tenant's saved mappings, the newest (or newest saved again) first."""
    return list(
        session.scalars(
            select(SavedMapping)
            .where(SavedMapping.tenant_id == tenant_id)
            .order_by(SavedMapping.updated_at.desc(), SavedMapping.id.desc())
        )
    )


def _name(raw: Any) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name or len(name) > NAME_MAX:
        raise Unprocessable(
            "invalid_name", f"Give the mapping a name of 1 to {NAME_MAX} characters.", {"field": "name"}
        )
    return name


def save_mapping(
    session: Session, tenant_id: int, actor_id: int | None, raw_name: Any, raw_mapping: Any
) -> tuple[SavedMapping, bool]:
    """Save a checked mapping under a name (a mapping of the same name is replaced); True when new."""
    name = _name(raw_name)
    mapping = (
        {k: v for k, v in raw_mapping.items() if k != HINTS_KEY} if isinstance(raw_mapping, dict) else None
    )
    columns = named_columns(mapping)
    check_mapping(session, tenant_id, mapping, columns)  # InvalidMapping lists every problem
    saved = session.scalar(
        select(SavedMapping).where(
            SavedMapping.tenant_id == tenant_id, func.lower(SavedMapping.name) == name.lower()
        )
    )
    created = saved is None
    if saved is None:
        saved = SavedMapping(tenant_id=tenant_id, created_by_id=actor_id)
        session.add(saved)
    saved.name, saved.mapping, saved.columns, saved.updated_at = name, mapping, columns, utcnow()
    session.flush()
    record(
        session, tenant_id, actor_id, "mapping.saved", str(saved.id), {"name": name, "replaced": not created}
    )
    return saved, created


def get_mapping(session: Session, tenant_id: int, mapping_id: int) -> SavedMapping:
    """One saved mapping of the tenant; another tenant's answers NotFound."""
    saved = session.get(SavedMapping, mapping_id) if abs(mapping_id) < 2**31 else None
    if saved is None or saved.tenant_id != tenant_id:
        raise NotFound(f"Saved mapping {mapping_id}")
    return saved


def delete_mapping(session: Session, tenant_id: int, actor_id: int | None, mapping_id: int) -> None:
    """Forget a saved mapping."""
    saved = get_mapping(session, tenant_id, mapping_id)
    record(session, tenant_id, actor_id, "mapping.deleted", str(saved.id), {"name": saved.name})
    session.delete(saved)


def suggestion(
    session: Session, tenant_id: int, headers: list[str], preview: list[dict[str, str]]
) -> dict[str, Any]:
    """The upload answer's suggestion: the newest saved mapping whose columns the file has (named in
    `suggested_from`, with `suggestion_problems` for what it chose that is gone), else by the headers."""
    have = set(headers)
    for saved in list_mappings(session, tenant_id):
        if set(saved.columns) <= have:
            mapping, problems = _without_deleted(session, tenant_id, saved)
            answer: dict[str, Any] = {"suggested_mapping": mapping, "suggested_from": saved.name}
            if problems:
                answer["suggestion_problems"] = problems
            return answer
    return {"suggested_mapping": suggest_mapping(headers, preview)}


def _missing(session: Session, tenant_id: int, model: type, ids: list[Any]) -> list[int]:
    wanted = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
    found = set(session.scalars(select(model.id).where(model.tenant_id == tenant_id, model.id.in_(wanted))))
    return [i for i in wanted if i not in found]


def _without_deleted(
    session: Session, tenant_id: int, saved: SavedMapping
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The saved mapping without the dialer entities deleted since, and a problem for each field left out."""
    mapping = copy.deepcopy(saved.mapping)
    problems = []

    def gone(field: str, model: type, ids: list[int]) -> None:
        listed, label = ", ".join(str(i) for i in ids), REFERENCE_LABELS[model]
        message = f'{label} {listed} of the saved mapping "{saved.name}" no longer exists; choose again.'
        problems.append({"field": field, "message": message})

    for f in FIELDS:
        spec = mapping.get(f.key)
        if f.entity is None or not isinstance(spec, dict) or "value" not in spec:
            continue
        ids = spec["value"] if isinstance(spec["value"], list) else [spec["value"]]
        missing = _missing(session, tenant_id, f.entity, ids)
        if missing:
            del mapping[f.key]
            gone(f.key, f.entity, missing)
    sip = mapping.get("sip")
    if isinstance(sip, dict) and "domain_id" in sip:
        missing = _missing(session, tenant_id, PbxDomain, [sip["domain_id"]])
        if missing:
            del sip["domain_id"]
            gone("sip.domain_id", PbxDomain, missing)
    return mapping, problems
