"""GET /api/v1/roles, /desks, /skill-groups, /pbx-domains (and one by id); PATCH /api/v1/roles/<id>."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.errors import DomainError, NotFound
from shared.reference import KINDS, as_dict, get_entity, list_entities, set_role_auth_default
from web.api import bp
from web.api.auth import json_body
from web.database import db
from web.security import admin, api_auth


@bp.get("/<any(roles, desks, 'skill-groups', 'pbx-domains'):kind>")
@api_auth
def list_reference(kind: str) -> Any:
    """The tenant's entities of one kind."""
    items = list_entities(db(), admin().tenant_id, KINDS[kind])
    return jsonify({"items": [as_dict(item) for item in items]})


@bp.get("/<any(roles, desks, 'skill-groups', 'pbx-domains'):kind>/<entity_id>")
@api_auth
def get_reference(kind: str, entity_id: str) -> Any:
    """One entity of the tenant."""
    if not entity_id.isdigit():
        raise NotFound(f"{kind} {entity_id}")
    return jsonify(as_dict(get_entity(db(), admin().tenant_id, KINDS[kind], int(entity_id))))


@bp.patch("/roles/<int:role_id>")
@api_auth
def update_role(role_id: int) -> Any:
    """Set a role's authentication default (`auth_default`: disabled, email_otp, google_2fa, or default)."""
    body = json_body()
    if "auth_default" not in body:
        raise DomainError("missing_fields", "Missing: auth_default", {"missing": ["auth_default"]})
    session = db()
    role = set_role_auth_default(session, admin().tenant_id, admin().id, role_id, body["auth_default"])
    session.commit()
    return jsonify(as_dict(role))
