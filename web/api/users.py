"""GET /api/v1/users, GET /api/v1/users/<id>, POST /api/v1/users/<id>/reset-password and /unlock."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared.errors import DomainError
from shared.users import get_user, list_users, reset_password, unlock_user, user_as_dict
from web.api import bp
from web.database import db
from web.security import admin, api_auth
from web.services import settings


def int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise DomainError("invalid_parameter", f'{name} must be a whole number, got "{raw}".')
    return int(raw)


@bp.get("/users")
@api_auth
def users_index() -> Any:
    """A page of the tenant's users, with search and an import filter."""
    page = list_users(
        db(),
        admin().tenant_id,
        page=int_arg("page", 1),
        per_page=int_arg("per_page", 50),
        q=request.args.get("q") or None,
        import_id=request.args.get("import_id") or None,
    )
    return jsonify(
        {
            "items": [user_as_dict(u) for u in page.items],
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
        }
    )


@bp.get("/users/<int:user_id>")
@api_auth
def users_show(user_id: int) -> Any:
    """One user of the tenant."""
    return jsonify(user_as_dict(get_user(db(), admin().tenant_id, user_id)))


@bp.post("/users/<int:user_id>/reset-password")
@api_auth
def users_reset_password(user_id: int) -> Any:
    """A new temporary password, shown in this answer only."""
    session = db()
    password = reset_password(session, settings(), admin().tenant_id, admin().id, user_id)
    session.commit()
    response = jsonify({"temporary_password": password})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/users/<int:user_id>/unlock")
@api_auth
def users_unlock(user_id: int) -> Any:
    """Unlock an account locked after failed logins; answers the user."""
    session = db()
    user = unlock_user(session, admin().tenant_id, admin().id, user_id)
    session.commit()
    return jsonify(user_as_dict(user))
