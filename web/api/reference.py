"""GET /api/v1/roles, /desks, /skill-groups, /pbx-domains (and one by id); PATCH /api/v1/roles/<id>."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from pydantic import BaseModel

from shared.dialer.reference import KINDS, as_dict, get_entity, list_entities, set_role_auth_default
from web.api import bp
from web.contract.routes import route
from web.contract.schemas.common import list_of
from web.contract.schemas.reference import Desk, PbxDomain, RoleUpdate, SkillGroup
from web.contract.schemas.reference import Role as RoleAnswer
from web.database import db
from web.security import admin

# Each kind's answer model and its name in the document: list_roles, get_role, {role_id}, ...
ANSWERS: dict[str, tuple[type[BaseModel], str]] = {
    "roles": (RoleAnswer, "role"),
    "desks": (Desk, "desk"),
    "skill-groups": (SkillGroup, "skill_group"),
    "pbx-domains": (PbxDomain, "pbx_domain"),
}


def _register(kind: str, model: type, item: type[BaseModel], name: str) -> None:
    """The list and the one-by-id views of a kind of reference data."""
    words = kind.replace("-", " ")

    listing = list_of(item, f"{item.__name__}List")

    @route(
        bp, "GET", f"/{kind}", answer=listing, name=f"list_{name}s", summary=f"The tenant's {words}, by id"
    )
    def list_kind() -> Any:
        """The tenant's entities of one kind, by id."""
        return jsonify({"items": [as_dict(e) for e in list_entities(db(), admin().tenant_id, model)]})

    one = f"/{kind}/<id:{name}_id>"

    @route(bp, "GET", one, answer=item, name=f"get_{name}", summary=f"One of the tenant's {words}")
    def get_kind(**path: int) -> Any:
        """One entity of the tenant."""
        return jsonify(as_dict(get_entity(db(), admin().tenant_id, model, path[f"{name}_id"])))


for _kind, (_item, _name) in ANSWERS.items():
    _register(_kind, KINDS[_kind], _item, _name)


@route(bp, "PATCH", "/roles/<id:role_id>", body=RoleUpdate, answer=RoleAnswer)
def update_role(role_id: int, body: RoleUpdate) -> Any:
    """Set a role's authentication default (`auth_default`: disabled, email_otp, google_2fa, or default)."""
    session = db()
    role = set_role_auth_default(session, admin().tenant_id, admin().id, role_id, body.auth_default)
    session.commit()
    return jsonify(as_dict(role))
