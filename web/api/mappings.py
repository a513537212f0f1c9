"""Saved mappings of the tenant (API.md "Beyond the help page"): list, save, delete."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.mapping.saved_mappings import as_dict, delete_mapping, list_mappings, save_mapping
from web.api import bp
from web.contract.routes import route
from web.contract.schemas.saved_mappings import (
    SavedMapping,
    SavedMappingList,
    SaveMapping,
    documented_mapping,
)
from web.database import db
from web.security import admin, tenant_id


@route(bp, "GET", "/mappings", answer=SavedMappingList)
def mappings_index() -> Any:
    """The tenant's saved mappings, newest first."""
    return jsonify({"items": [as_dict(m) for m in list_mappings(db(), tenant_id())]})


@route(
    bp,
    "POST",
    "/mappings",
    body=SaveMapping,
    answer=SavedMapping,
    status=201,
    also=(200,),
    errors=(422,),
    description="201 when new, 200 when it replaced the mapping of that name. 422 invalid_mapping lists "
    "every problem (details: field and message), as for an import.",
)
def mappings_save(body: SaveMapping) -> Any:
    """Save a mapping by name."""
    session = db()
    saved, created = save_mapping(session, admin().tenant_id, admin().id, body.name, body.mapping)
    documented_mapping(body.mapping)  # what it means is checked; its shape must be the documented one
    session.commit()
    return jsonify(as_dict(saved)), 201 if created else 200


@route(bp, "DELETE", "/mappings/<id:mapping_id>", media=None, status=204)
def mappings_delete(mapping_id: int) -> Any:
    """Forget a saved mapping."""
    session = db()
    delete_mapping(session, admin().tenant_id, admin().id, mapping_id)
    session.commit()
    return "", 204
