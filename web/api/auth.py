"""POST /api/v1/auth/token (every login step in one call) and DELETE /api/v1/auth/token."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared.accounts import Attempt, LoginRefused, log_in
from shared.auth import issue_token, revoke_token
from shared.errors import DomainError
from web.api import bp
from web.database import db
from web.mail import send_login_code
from web.security import Unauthorized, client_address, limiter, login_limit
from web.services import settings


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DomainError("invalid_json", "Send a JSON object with Content-Type: application/json.")
    return body


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DomainError("invalid_field", f"{name} must be a string.", {"field": name})
    return value


@bp.post("/auth/token")
@limiter.limit(login_limit)
def create_token() -> Any:
    """Exchange an admin's workspace, username and password (and code, new password) for a token."""
    body = json_body()
    fields = {name: body.get(name) for name in ("tenant", "username", "password")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise DomainError("missing_fields", "Missing: " + ", ".join(missing), {"missing": missing})
    attempt = Attempt(
        tenant=fields["tenant"],
        username=fields["username"],
        password=fields["password"],
        address=client_address(),
        code=_optional_text(body, "code"),
        new_password=_optional_text(body, "new_password"),
    )
    session = db()
    try:
        result = log_in(session, settings(), attempt)
    except LoginRefused as refused:
        session.commit()  # failure counts, a lock, a new enrolment secret or emailed code stay
        if refused.code_to_send is not None:
            send_login_code(refused.code_to_send)
        raise
    token, expires_at = issue_token(session, settings(), result.user)
    session.commit()
    answer: dict[str, Any] = {"token": token, "expires_at": expires_at.isoformat()}
    if result.recovery_codes:
        answer["recovery_codes"] = result.recovery_codes
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/auth/token")
def delete_token() -> Any:
    """Revoke the bearer token this request carries."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    session = db()
    if not token or not revoke_token(session, token):
        raise Unauthorized("unauthorized", "Send the bearer token to revoke in the Authorization header.")
    session.commit()
    return "", 204
