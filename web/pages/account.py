"""My account: every logged-in user changes their password and sees their second factor."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from shared.accounts import login_flow, recovery_codes
from shared.accounts.auth_types import LABELS, effective_auth_type
from shared.accounts.login_flow import PasswordRejected
from web.clients import settings
from web.database import db
from web.pages import bp
from web.security import account_auth, limiter, login_limit, session_id, session_user


def _context() -> dict[str, Any]:
    user = session_user()
    assert user is not None
    kind = effective_auth_type(user)
    return {
        "user": user,
        "auth_label": LABELS[kind],
        "auth_type": kind.value,
        "enrolled": login_flow.enrolled(user),
        "recovery_left": recovery_codes.remaining(db(), user) if login_flow.enrolled(user) else 0,
        "min_length": login_flow.MIN_PASSWORD_LENGTH,
    }


@bp.get("/account")
@account_auth
def account() -> Any:
    """The account page."""
    return render_template("account.html", changed=bool(request.args.get("changed")), **_context())


@bp.post("/account/password")
@account_auth
@limiter.limit(login_limit)
def account_password() -> Any:
    """Change one's own password; other sessions and tokens of the user end."""
    user = session_user()
    assert user is not None
    new, again = request.form.get("new_password", ""), request.form.get("confirm_password", "")
    if new != again:
        return render_template("account.html", error="The two new passwords differ.", **_context()), 422
    try:
        login_flow.change_own_password(
            db(), settings(), user, request.form.get("current_password", ""), new, keep_session=session_id()
        )
    except PasswordRejected as rejected:
        db().rollback()
        return render_template("account.html", error=rejected.message, **_context()), rejected.status
    db().commit()
    return redirect(url_for("pages.account", changed=1))
