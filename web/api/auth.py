"""POST /api/v1/auth/token."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared.auth import authenticate, issue_token
from shared.errors import DomainError
from web.api import bp
from web.database import db
from web.security import Unauthorized, limiter, login_limit
from web.services import settings


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DomainError("invalid_json", "Send a JSON object with Content-Type: application/json.")
    return body


@bp.post("/auth/token")
@limiter.limit(login_limit)
def create_token() -> Any:
    """Exchange an admin's workspace, username and password for a bearer token."""
    body = json_body()
    fields = {name: body.get(name) for name in ("tenant", "username", "password")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise DomainError("missing_fields", "Missing: " + ", ".join(missing), {"missing": missing})
    session = db()
    user = authenticate(session, settings(), fields["tenant"], fields["username"], fields["password"])
    if user is None:
        raise Unauthorized(
            "invalid_credentials", "Workspace, username or password is wrong, or not an admin."
        )
    token, expires_at = issue_token(session, settings(), user)
    session.commit()
    return jsonify({"token": token, "expires_at": expires_at.isoformat()})
