"""Saved mappings of the tenant (API.md "Beyond the help page"): list, save, delete."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.saved_mappings import as_dict, delete_mapping, list_mappings, save_mapping
from web.api import bp
from web.api.auth import json_body
from web.database import db
from web.security import admin, api_auth, tenant_id


@bp.get("/mappings")
@api_auth
def mappings_index() -> Any:
    """The tenant's saved mappings, newest first."""
    return jsonify({"items": [as_dict(m) for m in list_mappings(db(), tenant_id())]})


@bp.post("/mappings")
@api_auth
def mappings_save() -> Any:
    """Save a mapping by name: 201 when new, 200 when it replaced the mapping of that name."""
    body = json_body()
    session = db()
    saved, created = save_mapping(
        session, admin().tenant_id, admin().id, body.get("name"), body.get("mapping")
    )
    session.commit()
    return jsonify(as_dict(saved)), 201 if created else 200


@bp.delete("/mappings/<int:mapping_id>")
@api_auth
def mappings_delete(mapping_id: int) -> Any:
    """Forget a saved mapping."""
    session = db()
    delete_mapping(session, admin().tenant_id, admin().id, mapping_id)
    session.commit()
    return "", 204
