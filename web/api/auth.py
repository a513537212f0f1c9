"""POST /api/v1/auth/token (every login step in one call) and DELETE /api/v1/auth/token."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared.accounts.login_flow import Attempt, LoginRefused, log_in
from shared.accounts.tokens import issue_token, revoke_token
from web.api import bp
from web.clients import settings
from web.contract.routes import Caller, route
from web.contract.schemas.auth import Token, TokenRequest
from web.database import db
from web.mail import send_login_code
from web.security import Unauthorized, client_address, forget_token, limiter, login_limit


@route(
    bp,
    "POST",
    "/auth/token",
    body=TokenRequest,
    answer=Token,
    caller=Caller.ANYONE,
    errors=(401, 403, 422, 423, 429),
    description=(
        "Every login step in one call; the answers ask for `code` and `new_password` as needed: "
        "401 code_required (details.method), 403 enrolment_required (details.otpauth_uri, details.secret), "
        "403 password_change_required, 403 network_not_allowed, 403 admin_required, 423 account_locked, "
        "401 invalid_credentials or invalid_code, 422 password_too_short, password_too_long or "
        "password_unchanged, 503 code_not_sent or mail_unavailable."
    ),
)
@limiter.limit(login_limit)
def create_token(body: TokenRequest) -> Any:
    """Exchange an admin's workspace, username and password (and code, new password) for a token."""
    attempt = Attempt(
        tenant=body.tenant,
        username=body.username,
        password=body.password,
        address=client_address(),
        code=body.code or None,
        new_password=body.new_password or None,
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


@route(bp, "DELETE", "/auth/token", status=204, media=None, caller=Caller.TOKEN)
def delete_token() -> Any:
    """Revoke the bearer token this request carries."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    session = db()
    if not token or not revoke_token(session, token):
        raise Unauthorized("unauthorized", "Send the bearer token to revoke in the Authorization header.")
    session.commit()  # renews the access stamp: every process checks this token again
    forget_token(token)  # this one at once, even if Redis did not take the stamp
    return "", 204
