"""The login pages: password, then the second factor (code or enrolment), then a new password.

Between pages the login in progress lives in the server-side session (never the password);
it lasts ten minutes and dies when the user's password changes meanwhile.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from flask import jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from shared.accounts import login_flow, one_time_codes, recovery_codes, totp
from shared.accounts.auth_types import AuthType
from shared.accounts.login_flow import LoginRefused, PasswordRejected, Step
from shared.models import User, utcnow
from web.clients import settings
from web.database import db
from web.mail import send_login_code
from web.pages import bp
from web.redirects import safe_next
from web.security import (
    client_address,
    is_admin,
    limiter,
    login_limit,
    login_session,
    logout_session,
    session_user,
)

STEP_TIMEOUT = timedelta(minutes=10)
STEP_ENDPOINTS = {
    Step.CODE: "pages.login_code",
    Step.ENROL: "pages.login_enrol",
    Step.PASSWORD: "pages.login_password",
}


def _home(user: User) -> str:
    return url_for("pages.users_management") if is_admin(user) else url_for("pages.account")


def fingerprint(user: User) -> str:
    # A password change (or an admin's reset) ends a login in progress.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _pending() -> User | None:
    """The user whose login is in progress, if it is still valid."""
    state = session.get("login")
    if not isinstance(state, dict):
        return None
    user = db().get(User, state.get("user_id"))
    started = datetime.fromisoformat(state.get("started", "1970-01-01T00:00:00+00:00"))
    if (
        user is None
        or utcnow() - started > STEP_TIMEOUT
        or state.get("pw") != fingerprint(user)
        or user.locked_at
    ):
        session.pop("login", None)
        return None
    return user


def _restart() -> Response:
    session.pop("login", None)
    return redirect(url_for("pages.login", expired=1))


def advance(user: User) -> Response:
    """Go to the next step of the login, or finish it."""
    state = session["login"]
    step = login_flow.next_step(user, factor_done=bool(state.get("factor_done")))
    if (
        step is Step.CODE
        and login_flow.second_factor(user) is AuthType.EMAIL_OTP
        and not state.get("code_sent")
    ):
        code_id = login_flow.send_code(db(), settings(), user, client_address())
        db().commit()
        send_login_code(code_id)
        session["login"] = state | {"code_sent": True}
    if step is not Step.DONE:
        return redirect(url_for(STEP_ENDPOINTS[step]))
    login_flow.complete(db(), user, client_address(), via="page")
    db().commit()
    target = state.get("next")
    login_session(user)
    return redirect(target if target and is_admin(user) else _home(user))


def _refused(template: str, refused: LoginRefused, user: User | None = None, **context: Any) -> Any:
    """Show a refusal; a lock met on the way ends the login in progress."""
    db().commit()  # failure counts and locks stay
    if user is not None and user.locked_at is not None:
        session.pop("login", None)
        refused = LoginRefused("account_locked")
        template, context = "login.html", {"form": {}}
    return render_template(template, error=refused.message, **context), refused.status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login() -> Any:
    """Workspace, username and password: every user of a tenant logs in here."""
    user = session_user()
    if user is not None:
        return redirect(_home(user))
    form = {"tenant": request.form.get("tenant", ""), "username": request.form.get("username", "")}
    if request.method == "GET":
        notice = (
            "Your login took too long or changed; please log in again."
            if request.args.get("expired")
            else None
        )
        return render_template("login.html", form=form, notice=notice)
    try:
        user = login_flow.check_password(
            db(),
            settings(),
            form["tenant"],
            form["username"],
            request.form.get("password", ""),
            client_address(),
        )
    except LoginRefused as refused:
        return _refused("login.html", refused, form=form)
    session.clear()  # a fresh start: nothing of an earlier visitor's session carries over
    session["login"] = {
        "user_id": user.id,
        "started": utcnow().isoformat(),
        "pw": fingerprint(user),
        "factor_done": False,
        "next": safe_next(request.args.get("next")),
    }
    return advance(user)


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login_code() -> Any:
    """The one-time code from the authenticator app or the email (or a recovery code)."""
    user = _pending()
    if user is None:
        return _restart()
    if login_flow.next_step(user, factor_done=bool(session["login"].get("factor_done"))) is not Step.CODE:
        return advance(user)
    method = login_flow.second_factor(user)
    context = {"method": method.value if method else "", "email": _masked(user.email)}
    if request.method == "GET":
        return render_template("login_code.html", **context)
    try:
        proof = login_flow.verify_factor(
            db(), settings(), user, request.form.get("code", ""), client_address()
        )
    except LoginRefused as refused:
        return _refused("login_code.html", refused, user, **context)
    login_flow.spend(db(), user, proof)
    db().commit()
    session["login"] = session["login"] | {"factor_done": True}
    return advance(user)


@bp.post("/login/code/resend")
@limiter.limit(login_limit)
def login_code_resend() -> Any:
    """Email a new code (the earlier one stops working)."""
    user = _pending()
    if user is None:
        return _restart()
    if login_flow.second_factor(user) is AuthType.EMAIL_OTP:
        session["login"] = session["login"] | {"code_sent": False}
    return advance(user)


@bp.get("/login/code/status")
def login_code_status() -> Any:
    """Whether the emailed code is on its way, sent, or could not be sent (the code page polls it)."""
    user = _pending()
    row = one_time_codes.current(db(), user) if user is not None else None
    if row is None:
        return jsonify({"delivery": None})
    return jsonify({"delivery": one_time_codes.delivery(row).value})


@bp.route("/login/enrol", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login_enrol() -> Any:
    """Google Authenticator enrolment: the QR code (drawn here), its secret, and a first code."""
    user = _pending()
    if user is None:
        return _restart()
    if login_flow.next_step(user, factor_done=bool(session["login"].get("factor_done"))) is not Step.ENROL:
        return advance(user)
    details = login_flow.enrolment_details(db(), settings(), user)
    db().commit()  # the secret stays the same until enrolment is done
    context = {"qr": totp.qr_svg(details["otpauth_uri"]), "secret": details["secret"], "user": user}
    if request.method == "GET":
        return render_template("login_enrol.html", **context)
    try:
        proof = login_flow.verify_factor(
            db(), settings(), user, request.form.get("code", ""), client_address()
        )
    except LoginRefused as refused:
        return _refused("login_enrol.html", refused, user, **context)
    codes = login_flow.spend(db(), user, proof) or []
    db().commit()
    session["login"] = session["login"] | {"factor_done": True}
    # Shown in this answer only: the plain codes are kept nowhere.
    response = render_template("login_recovery_codes.html", codes=codes, count=recovery_codes.COUNT)
    return response, 200, {"Cache-Control": "no-store"}


@bp.get("/login/continue")
def login_continue() -> Any:
    """On to the next step after the recovery codes were shown."""
    user = _pending()
    return _restart() if user is None else advance(user)


@bp.route("/login/password", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login_password() -> Any:
    """The forced password change at first login."""
    user = _pending()
    if user is None:
        return _restart()
    if login_flow.next_step(user, factor_done=bool(session["login"].get("factor_done"))) is not Step.PASSWORD:
        return advance(user)
    context = {"min_length": login_flow.MIN_PASSWORD_LENGTH}
    if request.method == "GET":
        return render_template("login_password.html", **context)
    new, again = request.form.get("new_password", ""), request.form.get("confirm_password", "")
    if new != again:
        return render_template("login_password.html", error="The two passwords differ.", **context), 422
    try:
        login_flow.set_password(db(), settings(), user, new)
    except PasswordRejected as rejected:
        return render_template("login_password.html", error=rejected.message, **context), rejected.status
    db().commit()
    session["login"] = session["login"] | {"pw": fingerprint(user)}
    return advance(user)


@bp.post("/logout")
def logout() -> Any:
    """End the session on the server: a copy of the cookie no longer works."""
    user = session_user()
    if user is not None:
        login_flow.record_logout(db(), user, client_address())
        db().commit()
    logout_session()
    return redirect(url_for("pages.login"))


def _masked(email: str) -> str:
    """The address as the code page shows it (a***@example.com)."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "your email address"
