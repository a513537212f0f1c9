"""GET /api/v1/roles, /desks, /skill-groups, /pbx-domains (and one by id)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.errors import NotFound
from shared.reference import KINDS, as_dict, get_entity, list_entities
from web.api import bp
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
